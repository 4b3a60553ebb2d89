"""Shared pytest set-up: fixture plugins that start real servers on free loopback ports."""

pytest_plugins = [
    "tests.fixtures.mariadb",
    "tests.fixtures.moto",
    "tests.fixtures.servers",
    "tests.fixtures.slapd",
    "tests.fixtures.tls",
]

"""The config loader: defaults, TOML, environment and command-line layers, errors, secrets."""

from __future__ import annotations

import dataclasses
import io
import logging
import tomllib
from pathlib import Path

import pytest

from gateway import logs
from gateway.cli import main
from gateway.config import (
    Config,
    Secret,
    dump_config,
    load_config,
    parse_listen,
    section_types,
)
from gateway.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "s3cr3t-Pa55word"


@pytest.fixture(autouse=True)
def _in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test where no ./coolstorage.toml exists and no COOLSTORAGE_* is set."""
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("COOLSTORAGE_"):
            monkeypatch.delenv(name)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def config_error(*args: object, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(*args, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- defaults ------------------------------------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    config = load_config(env={})
    assert config.source is None
    assert config.server.s3_listen == "127.0.0.1:9000"
    assert config.server.webdav_listen == "127.0.0.1:8080"
    assert config.server.admin_listen == "127.0.0.1:8081"
    assert config.server.listen("s3") == ("127.0.0.1", 9000)
    assert config.server.threads == 16
    assert config.server.request_queue_size == 128
    assert config.server.shutdown_timeout == 30
    assert config.server.tls is None
    assert config.catalog.url.reveal() == "sqlite:///./var/catalog.db"
    assert config.catalog.pool_size == 10 and config.catalog.auto_upgrade is True
    assert config.storage.default_backend == "local"
    assert dict(config.backends["local"].options) == {
        "type": "localfs",
        "root": "./var/blobs",
        "restore_delay": 5,
    }
    assert config.sealing.block_size == 4 * 1024 * 1024 and config.sealing.level == 3
    assert config.keys.master_key_file == "./var/master.key"
    assert not config.keys.master_key
    assert config.keys.previous_master_key_files == []
    assert config.engine.enabled and config.engine.sweep_interval == 300
    assert config.engine.orphan_age == 86400
    assert (config.log.level, config.log.format) == ("info", "text")


def test_example_file_documents_every_option_with_its_default() -> None:
    example_path = REPO / "config.example.toml"
    example = load_config(example_path, env={})
    assert example == load_config(env={})
    text = example_path.read_text()
    for name, cls in section_types().items():
        assert f"[{name}]" in text
        for f in dataclasses.fields(cls):
            assert f"\n{f.name} = " in text or f"\n# {f.name} = " in text, f"{name}.{f.name}"
    assert "[backends.local]" in text


def test_data_dir_moves_every_derived_default(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", '[server]\ndata_dir = "/srv/cool"\n')
    config = load_config(file, env={})
    assert config.catalog.url.reveal() == "sqlite:////srv/cool/catalog.db"
    assert config.keys.master_key_file == "/srv/cool/master.key"
    assert config.backends["local"].options["root"] == "/srv/cool/blobs"


# -- layers --------------------------------------------------------------------------------


def test_toml_values_and_backend_tables(tmp_path: Path) -> None:
    file = write(
        tmp_path / "c.toml",
        """
[server]
s3_listen = "[::1]:9100"
webdav_listen = ""
threads = 4
shutdown_timeout = 2

[storage]
default_backend = "cold"

[backends.cold]
type = "s3"
bucket = "archive"
region = "eu-west-1"
""",
    )
    config = load_config(file, env={})
    assert config.source == str(file)
    assert config.server.listen("s3") == ("::1", 9100)
    assert config.server.listen("webdav") is None
    assert config.server.threads == 4
    assert isinstance(config.server.shutdown_timeout, float)
    assert list(config.backends) == ["cold"]  # naming backends replaces the default one
    assert config.backends["cold"].type == "s3"
    assert config.backends["cold"].options["bucket"] == "archive"


def test_environment_beats_toml_and_command_line_beats_environment(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", '[server]\nthreads = 4\n[log]\nlevel = "warning"\n')
    env = {
        "COOLSTORAGE_SERVER_THREADS": "32",
        "COOLSTORAGE_LOG_LEVEL": "error",
        "COOLSTORAGE_ENGINE_ENABLED": "false",
        "COOLSTORAGE_KEYS_PREVIOUS_MASTER_KEY_FILES": "/k/one, /k/two",
        "COOLSTORAGE_BACKENDS_LOCAL_RESTORE_DELAY": "0",
        "COOLSTORAGE_UNRELATED_THING": "ignored: no such section",
    }
    config = load_config(file, env=env, overrides={"log": {"level": "debug"}})
    assert config.server.threads == 32
    assert config.engine.enabled is False
    assert config.keys.previous_master_key_files == ["/k/one", "/k/two"]
    assert config.backends["local"].options["restore_delay"] == 0
    assert config.log.level == "debug"


def test_config_file_from_environment_and_default_name(tmp_path: Path) -> None:
    named = write(tmp_path / "named.toml", "[server]\nthreads = 3\n")
    assert load_config(env={"COOLSTORAGE_CONFIG": str(named)}).server.threads == 3
    write(tmp_path / "coolstorage.toml", "[server]\nthreads = 5\n")
    config = load_config(env={})
    assert config.server.threads == 5 and config.source == "coolstorage.toml"
    message = config_error(tmp_path / "missing.toml", env={})
    assert "missing.toml does not exist" in message


def test_a_backend_can_be_defined_from_the_environment() -> None:
    config = load_config(
        env={
            "COOLSTORAGE_BACKENDS_ARCHIVE_TYPE": "s3",
            "COOLSTORAGE_BACKENDS_ARCHIVE_BUCKET": "b",
            "COOLSTORAGE_STORAGE_DEFAULT_BACKEND": "archive",
        }
    )
    assert config.backends["archive"].options == {"type": "s3", "bucket": "b"}


# -- errors --------------------------------------------------------------------------------


def test_unknown_key_names_the_key_and_its_source(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "[server]\nthread = 3\n")
    message = config_error(file, env={})
    assert "unknown config key server.thread" in message
    assert str(file) in message
    assert "did you mean server.threads" in message
    assert "COOLSTORAGE_SERVER_TREADS" in config_error(env={"COOLSTORAGE_SERVER_TREADS": "3"})
    file2 = write(tmp_path / "d.toml", "[sever]\nthreads = 3\n")
    assert "unknown config section [sever]" in config_error(file2, env={})


def test_unknown_key_stops_the_cli_with_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "c.toml", "[catalog]\npool = 3\n")
    assert main(["--config", str(file), "config", "check"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("coolstorage: error: unknown config key catalog.pool ")


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        ('[server]\nthreads = "many"\n', {}, 'server.threads: expected an integer, got "many"'),
        ("[server]\nthreads = 2.5\n", {}, "server.threads: expected an integer, got 2.5"),
        ("[engine]\nenabled = 1\n", {}, "engine.enabled: expected true or false, got 1"),
        ("[server]\ns3_listen = 9000\n", {}, "server.s3_listen: expected a string, got 9000"),
        ("", {"COOLSTORAGE_SERVER_THREADS": "x"}, "from COOLSTORAGE_SERVER_THREADS"),
        ("", {"COOLSTORAGE_ENGINE_ENABLED": "perhaps"}, "engine.enabled: expected true or false"),
        ('[keys]\nprevious_master_key_files = "a"\n', {}, "expected a list of strings"),
    ],
)
def test_wrong_types_name_the_key(tmp_path: Path, toml: str, env: dict[str, str], expected: str) -> None:
    file = write(tmp_path / "c.toml", toml)
    assert expected in config_error(file, env=env)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[backends.cold]\nbucket = "x"\n', "backends.cold.type: required value missing"),
        ('[server]\ntls_cert_file = "/c.pem"\n', "server.tls_key_file: required value missing"),
        ('[storage]\ndefault_backend = "nope"\n', "storage.default_backend: no backend named 'nope'"),
        ('[server]\ns3_listen = "localhost"\n', "server.s3_listen: expected \"host:port\""),
        ("[server]\nthreads = 0\n", "server.threads: must be at least 1"),
        ('[log]\nformat = "xml"\n', "log.format: expected one of text, json"),
        ("[sealing]\nlevel = 40\n", "sealing.level"),
        ("[catalog]\ncache_ttl = 300\n", "catalog.cache_ttl: must be between 0 and 30"),
        ('[catalog]\nurl = "not a url"\n', "catalog.url: expected a database URL"),
        ("[server\n", "config file"),
    ],
)
def test_missing_and_invalid_values(tmp_path: Path, toml: str, expected: str) -> None:
    file = write(tmp_path / "c.toml", toml)
    assert expected in config_error(file, env={})


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_listen("[::]:443") == ("::", 443)
    assert parse_listen("") is None
    for bad in ("9000", "host:", ":80", "h:99999", "[::1]"):
        with pytest.raises(ConfigError):
            parse_listen(bad, "server.s3_listen")


# -- secrets -------------------------------------------------------------------------------


def test_secret_never_shows_itself() -> None:
    secret = Secret(PASSWORD)
    assert str(secret) == repr(secret) == f"{secret}" == "***"
    assert PASSWORD not in f"{secret!r} {secret!s} {[secret]} {({'k': secret})}"
    assert secret.reveal() == PASSWORD
    assert secret == Secret(PASSWORD) and secret != Secret("other")
    assert not Secret("")


def test_secrets_are_hidden_in_dumps_reprs_and_errors(tmp_path: Path) -> None:
    url = f"mysql+pymysql://cool:{PASSWORD}@db.example/cool"
    file = write(
        tmp_path / "c.toml",
        f'[catalog]\nurl = "{url}"\n'
        '[backends.local]\ntype = "localfs"\nroot = "/x"\n'
        f'secret_access_key = "{PASSWORD}-backend"\n',
    )
    config = load_config(file, env={"COOLSTORAGE_KEYS_MASTER_KEY": "ab" * 32})
    assert config.catalog.url.reveal() == url
    dump = dump_config(config)
    assert PASSWORD not in dump and "ab" * 32 not in dump
    assert 'url = "***"' in dump and 'master_key = "***"' in dump
    assert 'secret_access_key = "***"' in dump
    tomllib.loads(dump)  # still valid TOML
    assert PASSWORD not in repr(config) and PASSWORD not in str(config.catalog)
    assert set(config.secrets()) >= {PASSWORD, "ab" * 32}
    assert url not in config.secrets()  # the password is masked, the rest stays readable
    assert load_config(env={}).secrets() == []  # a SQLite path is no secret

    # A wrongly typed secret is not echoed either.
    bad = write(tmp_path / "bad.toml", "[keys]\nmaster_key = 12345678901\n")
    message = config_error(bad, env={})
    assert "keys.master_key" in message and "12345678901" not in message


def test_secret_from_a_file(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "url", f"sqlite:///{tmp_path}/x.db\n")
    file = write(tmp_path / "c.toml", f'[catalog]\nurl_file = "{secret_file}"\n')
    assert load_config(file, env={}).catalog.url.reveal() == f"sqlite:///{tmp_path}/x.db"
    env = {"COOLSTORAGE_CATALOG_URL_FILE": str(tmp_path / "absent")}
    message = config_error(env=env)
    assert message.startswith("catalog.url_file: cannot read") and "absent" in message
    # A backend's own *_file options are the plugin's to read: passed through, shown in dumps.
    file2 = write(
        tmp_path / "b.toml",
        '[backends.local]\ntype = "localfs"\nroot = "/x"\nsecret_access_key_file = "/s/k"\n',
    )
    config = load_config(file2, env={})
    assert config.backends["local"].options["secret_access_key_file"] == "/s/k"
    assert 'secret_access_key_file = "/s/k"' in dump_config(config)


def test_config_check_hides_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COOLSTORAGE_CATALOG_URL", f"mysql+pymysql://u:{PASSWORD}@h/db")
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert PASSWORD not in out
    assert tomllib.loads(out)["catalog"]["url"] == "***"


def test_log_lines_mask_registered_secrets() -> None:
    stream = io.StringIO()
    logs.setup_logging("info", "text", stream=stream)
    try:
        logs.register_secret(PASSWORD)
        logging.getLogger("test").warning("could not connect to mysql://u:%s@h", PASSWORD)
        logs.setup_logging("info", "json", stream=stream)
        logging.getLogger("test").warning("again %s", PASSWORD)
    finally:
        logs.setup_logging("warning", "text")
    text = stream.getvalue()
    assert PASSWORD not in text
    assert text.count("***") == 2


def test_config_equality_ignores_source(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "")
    assert load_config(file, env={}) == load_config(env={})
    assert isinstance(load_config(env={}), Config)


def test_kubernetes_configmap_is_a_valid_config(tmp_path: Path) -> None:
    import yaml  # PyYAML comes with moto[server], a test dependency

    configmap = yaml.safe_load((REPO / "deploy/kubernetes/configmap.yaml").read_text())
    file = write(tmp_path / "k8s.toml", configmap["data"]["coolstorage.toml"])
    config = load_config(
        file,
        env={
            "COOLSTORAGE_CATALOG_URL": "mysql+pymysql://u:p@mariadb/coolstorage",
            "COOLSTORAGE_KEYS_MASTER_KEY": "00" * 32,
        },
    )
    assert config.backends[config.storage.default_backend].type == "s3"
    assert config.log.format == "json"
    deployment, service = yaml.safe_load_all((REPO / "deploy/kubernetes/gateway.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for name in ("s3", "webdav", "admin"):
        listen = config.server.listen(name)
        assert listen is not None and listen[1] == ports[name]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert config.server.shutdown_timeout < grace
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)

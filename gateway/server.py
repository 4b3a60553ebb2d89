"""``coolstorage serve``: the listeners, the engine, and a clean shutdown.

One cheroot WSGI server per listener (S3, WebDAV, admin), each in its own thread with its
own pool of ``server.threads`` request threads and a listen backlog of
``server.request_queue_size`` (cheroot's default of 5 stalls parallel clients). With
``server.tls_cert_file`` and ``server.tls_key_file`` set, every listener speaks TLS through
cheroot's builtin ``ssl`` adapter; otherwise put a TLS-terminating proxy in front (README).

Which WSGI app a listener serves is decided by :data:`APP_FACTORIES`, one factory per
listener taking the opened :class:`~gateway.app.Gateway`: plugging in the real S3 or WebDAV
front end is a one-line change there.

On SIGTERM or SIGINT the listeners stop accepting, requests in flight are given up to
``server.shutdown_timeout`` seconds to finish (an upload in progress completes), the engine
is cancelled, the gateway closed, and the process exits 0. A second signal exits at once.
"""

from __future__ import annotations

import logging
import math
import os
import re
import signal
import ssl
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, TextIO

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from gateway.app import Gateway
from gateway.config import LISTENERS, Config
from gateway.errors import ConfigError
from gateway.logs import RequestIdMiddleware

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
AppFactory = Callable[[Gateway], WSGIApp]

SERVER_NAME = "coolstorage"
MAX_REQUEST_HEADER_SIZE = 64 * 1024


def unavailable_app(message: str) -> WSGIApp:
    """A WSGI app answering every request ``503`` with ``message`` (a front end to come)."""
    body = (message + "\n").encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(
            "503 Service Unavailable",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app


def s3_app(gateway: Gateway) -> WSGIApp:
    """The S3 listener's app: the S3 front end (protocols/s3)."""
    from protocols.s3.app import make_s3_app

    return make_s3_app(gateway)


def webdav_app(gateway: Gateway) -> WSGIApp:
    """The WebDAV listener's app (protocols/webdav)."""
    from protocols.webdav import make_webdav_app

    return make_webdav_app(gateway)


def admin_app(gateway: Gateway) -> WSGIApp:
    """The admin listener's app: health probes, later the core API and console."""
    from admin.app import make_admin_app

    return make_admin_app(gateway)


#: The WSGI app of each listener, built from the opened gateway.
APP_FACTORIES: dict[str, AppFactory] = {"s3": s3_app, "webdav": webdav_app, "admin": admin_app}

_DISPLAY = {"s3": "S3", "webdav": "WebDAV", "admin": "admin"}


@dataclass
class Listener:
    """One bound cheroot server and the thread serving it."""

    name: str
    server: wsgi.Server
    tls: bool
    thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.bind_addr[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{port}"


class Listeners:
    """The enabled listeners of a config: bind them, serve them, drain and stop them."""

    def __init__(
        self,
        gateway: Gateway,
        config: Config,
        factories: Mapping[str, AppFactory] | None = None,
    ) -> None:
        self.gateway = gateway
        self.config = config
        self.factories = dict(APP_FACTORIES if factories is None else factories)
        self.listeners: list[Listener] = []
        #: The front ends' apps, closed (those with a ``close``) once the listeners stop.
        self.apps: list[WSGIApp] = []

    def bind(self) -> None:
        """Create and bind every enabled listener (``ConfigError`` if a port is taken or
        the TLS files are unusable). Nothing is served until :meth:`start`."""
        server_config = self.config.server
        try:
            for name in LISTENERS:
                address = server_config.listen(name)
                if address is None:
                    continue
                front = self.factories[name](self.gateway)
                self.apps.append(front)
                server = wsgi.Server(
                    address,
                    RequestIdMiddleware(front, listener=name),
                    numthreads=server_config.threads,
                    server_name=SERVER_NAME,
                    request_queue_size=server_config.request_queue_size,
                    shutdown_timeout=math.ceil(server_config.shutdown_timeout),
                )
                server.error_log = _cheroot_log  # type: ignore[method-assign]
                # Unbounded by default; S3 allows 8 KiB of metadata, so 64 KiB is ample.
                server.max_request_header_size = MAX_REQUEST_HEADER_SIZE
                tls = server_config.tls
                if tls is not None:
                    server.ssl_adapter = _ssl_adapter(*tls)
                try:
                    server.prepare()
                except OSError as error:
                    raise ConfigError(
                        f"server.{name}_listen: cannot listen on {address[0]}:{address[1]}: "
                        f"{_os_reason(error)}"
                    ) from None
                self.listeners.append(Listener(name, server, tls is not None))
        except BaseException:
            self.stop(0)
            raise

    def start(self) -> None:
        """Serve every bound listener, each in its own thread."""
        for listener in self.listeners:
            listener.thread = threading.Thread(
                target=_serve, args=(listener,), name=f"listener-{listener.name}", daemon=True
            )
            listener.thread.start()
            log.info("%s listening on %s", _DISPLAY[listener.name], listener.url)

    def urls(self) -> dict[str, str]:
        """``listener name -> base URL`` of the bound listeners."""
        return {listener.name: listener.url for listener in self.listeners}

    def failed(self) -> list[str]:
        """Names of started listeners whose thread has ended (a crash)."""
        return [
            listener.name
            for listener in self.listeners
            if listener.thread is not None and not listener.thread.is_alive()
        ]

    def stop(self, timeout: float) -> None:
        """Stop accepting, let requests in flight finish for up to ``timeout`` seconds,
        then close what is left. The listeners drain in parallel."""
        stoppers = []
        for listener in self.listeners:
            listener.server.shutdown_timeout = math.ceil(timeout)
            if not listener.server.ready:
                _close_socket(listener.server)
                continue
            stopper = threading.Thread(target=listener.server.stop, name=f"stop-{listener.name}")
            stopper.start()
            stoppers.append(stopper)
        for stopper in stoppers:
            stopper.join(timeout + 5)
        for listener in self.listeners:
            if listener.thread is not None:
                listener.thread.join(2)
        # Front ends with threads of their own (the admin API's restore copies) stop them.
        apps, self.apps = self.apps, []
        for app in apps:
            close = getattr(app, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing the %s front end failed", type(app).__name__)


def _os_reason(error: OSError) -> str:
    """The reason of a bind error; cheroot wraps it in a long message of its own."""
    if error.strerror:
        return error.strerror
    reasons = re.findall(r"\[Errno \d+\] ([^)]*)", str(error))
    return reasons[-1] if reasons else str(error)


def _serve(listener: Listener) -> None:
    try:
        listener.server.serve()
    except Exception:
        log.exception("%s listener failed", _DISPLAY[listener.name])


def _close_socket(server: wsgi.Server) -> None:
    sock = getattr(server, "socket", None)
    if sock is not None:
        sock.close()
        server.socket = None


def _ssl_adapter(cert_file: str, key_file: str) -> BuiltinSSLAdapter:
    try:
        adapter = BuiltinSSLAdapter(cert_file, key_file)
    except FileNotFoundError as error:
        raise ConfigError(
            f"server.tls_cert_file/tls_key_file: cannot read {error.filename or cert_file}: "
            f"{error.strerror}"
        ) from None
    except (ssl.SSLError, OSError) as error:
        raise ConfigError(
            f"server.tls_cert_file/tls_key_file: cannot load the certificate {cert_file} "
            f"and key {key_file}: {error}"
        ) from None
    adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
    return adapter


_cheroot_logger = logging.getLogger("cheroot")


def _cheroot_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    _cheroot_logger.log(level, "%s", msg, exc_info=traceback)


# -- serve ---------------------------------------------------------------------------------


class _Stop:
    """Set by the first SIGTERM/SIGINT; a second one ends the process at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name = ""

    def handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.event.is_set():
            log.warning("%s again: exiting without waiting for requests", name)
            os._exit(1)
        self.signal_name = name
        self.event.set()


def serve(
    config: Config,
    *,
    out: TextIO | None = None,
    factories: Mapping[str, AppFactory] | None = None,
    ready: Callable[[dict[str, str]], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the gateway until SIGTERM/SIGINT (or ``stop`` is set); return the exit status.

    Opens the gateway, binds the listeners, creates the first admin on a fresh catalog and
    prints it once to ``out`` (stdout) with the endpoints, starts the engine, then serves.
    ``ready`` is called with the listener URLs once everything runs (tests use it).
    """
    from gateway.bootstrap import ensure_first_admin
    from tiering.engine import Engine, default_tasks

    out = out or sys.stdout
    stopper = _Stop()
    if stop is not None:
        stopper.event = stop
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # Before anything slow: a SIGTERM during start-up then means "stop once started".
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stopper.handle)
    try:
        gateway = Gateway.open(config)
    except BaseException:
        _restore_signals(previous)
        raise
    listeners = Listeners(gateway, config, factories)
    engine: Engine | None = None
    serving = False
    try:
        listeners.bind()
        first = ensure_first_admin(gateway)
        urls = listeners.urls()
        print_banner(out, urls, first)

        gateway.start_background()
        if config.engine.enabled:
            engine = Engine(gateway, default_tasks(config))
            engine.start()
        listeners.start()
        serving = True
        log.info(
            "Cool Storage is serving (pid %d, config: %s)",
            os.getpid(),
            config.source or "built-in defaults",
        )
        if ready is not None:
            ready(urls)

        while not stopper.event.wait(0.5):
            dead = listeners.failed()
            if dead:
                log.error("listener %s stopped unexpectedly; shutting down", ", ".join(dead))
                return 1
        log.info(
            "%s received: draining requests (up to %.0f s)",
            stopper.signal_name or "stop",
            config.server.shutdown_timeout,
        )
        return 0
    finally:
        listeners.stop(config.server.shutdown_timeout)
        if engine is not None:
            engine.stop(timeout=max(5.0, config.server.shutdown_timeout))
        gateway.close()
        _restore_signals(previous)
        if serving:
            log.info("stopped")


def _restore_signals(previous: Mapping[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def print_banner(out: TextIO, urls: Mapping[str, str], first: Any) -> None:
    """Tell the person who started the server where to connect, and (first start only)
    the admin user and S3 access key that were just created."""
    lines = ["", "Cool Storage is running."]
    if "s3" in urls:
        lines.append(f"  S3:      {urls['s3']}    e.g. aws --endpoint-url {urls['s3']} s3 ls")
    if "webdav" in urls:
        lines.append(f"  WebDAV:  {urls['webdav']}/    (a network drive; user name and password)")
    if "admin" in urls:
        lines.append(f"  Admin:   {urls['admin']}/    (health: /healthz, /readyz)")
    if first is not None:
        lines += [
            "",
            "First start: an admin user and an S3 access key were created.",
            "They are shown only this once; the password and secret are not stored in clear.",
            f"  user:               {first.user}",
            f"  password:           {first.password}",
            f"  org:                {first.org}",
            f"  access key id:      {first.access_key_id}",
            f"  secret access key:  {first.secret_access_key}",
        ]
        if "s3" in urls:
            lines += [
                "",
                "  export AWS_ACCESS_KEY_ID=" + first.access_key_id,
                "  export AWS_SECRET_ACCESS_KEY=" + first.secret_access_key,
                f"  aws --endpoint-url {urls['s3']} s3 mb s3://my-first-bucket",
            ]
    lines.append("")
    out.write("\n".join(lines) + "\n")
    out.flush()

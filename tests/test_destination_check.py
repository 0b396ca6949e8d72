"""The destination check's outcomes: retried when the store may recover, failed at once when not.

Every exception here comes from a real request: to a real SeaweedFS (wrong secret, unknown key,
no permission, missing bucket, plain HTTP at an https:// URL), through devtools/faultproxy.py
(503 SlowDown, 500 InternalError, 400 Throttling, a dropped connection, an answer that never
comes), to a closed port (connection refused), to a listening socket whose accept queue is full
(the connect times out), or to a TLS server with an untrusted certificate. The check runs through
``tasks._checked_client``, the function the export task calls, with the connection from
``AIRFLOW_CONN_*`` as in a deployment. The only stand-in is the task instance, whose try counters
a real run provides (the system tests in tests/test_check_retries_system.py run the same through
Airflow's scheduler).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import EXPORTER, MISSING_BUCKET

from devtools import airflow_env
from devtools.faultproxy import FaultProxy
from devtools.tls import make_ca_and_server_cert
from subscription_exports import s3, tasks
from subscription_exports.compat import AirflowFailException
from subscription_exports.config import validate_destination
from subscription_exports.integrations import S3_EXPORT

pytestmark = pytest.mark.system

BUCKET = "exports"
CONN = "check_s3"
FIRST_TRY = types.SimpleNamespace(try_number=1, max_tries=3)  # a task with 3 retries, on its first try
LAST_TRY = types.SimpleNamespace(try_number=4, max_tries=3)


def destination(bucket: str = BUCKET, conn_id: str = CONN) -> Any:
    entry = {"name": "acme", "conn_id": conn_id, "bucket": bucket, "folder": "check", "app_id": "com.acme"}
    return validate_destination(entry, S3_EXPORT, origin="test")


def where(bucket: str = BUCKET, conn_id: str = CONN) -> str:
    return f"destination 'acme' (connection '{conn_id}', bucket '{bucket}')"


@pytest.fixture
def connect(monkeypatch):
    """Define the Airflow connection CONN (as AIRFLOW_CONN_CHECK_S3): one attempt per request unless
    ``retries`` says otherwise, so each fault below reaches the check after botocore gives up."""

    def use(endpoint_url: str, *, access_key: str = EXPORTER.access_key, secret_key: str = EXPORTER.secret_key,
            attempts: int = 1, **config: Any) -> None:  # fmt: skip
        config_kwargs = {"s3": {"addressing_style": "path"}, "retries": {"mode": "standard",
                         "total_max_attempts": attempts}, **config}  # fmt: skip
        value = airflow_env.aws_connection_json(endpoint_url, access_key, secret_key, config_kwargs=config_kwargs)
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", value)

    return use


@pytest.fixture
def proxy(seaweedfs) -> Iterator[FaultProxy]:
    with FaultProxy(seaweedfs.endpoint_url) as p:
        yield p


@contextlib.contextmanager
def error_lines() -> Iterator[list[str]]:
    """ERROR lines of the task module (Airflow's logging setup may keep them from pytest's caplog)."""
    lines: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(tasks.__name__)
    disabled, logger.disabled = logger.disabled, False
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.disabled = disabled


def check(dest: Any, ti: Any = FIRST_TRY) -> tuple[BaseException, list[str]]:
    """Run the check, which must fail; (the exception raised, the ERROR lines logged)."""
    with error_lines() as lines, pytest.raises((AirflowFailException, s3.DestinationUnavailable)) as err:
        tasks._checked_client(dest, ti)
    return err.value, lines


def assert_retried(exc: BaseException, lines: list[str], cause: str) -> str:
    """A retryable failure: DestinationUnavailable, one ERROR line naming destination, connection,
    bucket, the cause, and that Airflow retries it; the exception carries the same line."""
    assert isinstance(exc, s3.DestinationUnavailable), f"{type(exc).__name__}: {exc}"
    assert not isinstance(exc, AirflowFailException)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f"{where()}: check failed: {cause}"), line
    assert line.endswith("; the store is unreachable or busy, Airflow retries this task (try 1 of 4)"), line
    assert str(exc) == line and "\n" not in line
    assert EXPORTER.secret_key not in line
    return line


def assert_failed_at_once(exc: BaseException, lines: list[str], line: str) -> None:
    assert isinstance(exc, AirflowFailException), f"{type(exc).__name__}: {exc}"
    assert lines == [line] and str(exc) == line


# -- retried: the store may answer later ---------------------------------------------------------


def test_slowdown_503_is_retried(proxy, connect):
    connect(proxy.endpoint_url, attempts=2)
    rule = proxy.fail(503, times=2, method="GET", query="list-type=2")
    exc, lines = check(destination())
    assert rule.applied == 2, "botocore retried within the call first, then gave up"
    assert_retried(exc, lines, "SlowDown: Please reduce your request rate.")


def test_internal_error_500_at_the_write_probe_is_retried(proxy, connect):
    connect(proxy.endpoint_url)
    proxy.fail(500, method="PUT", path="/.export-write-check/")
    exc, lines = check(destination())
    assert_retried(exc, lines, "InternalError: We encountered an internal error. Please try again.")


@pytest.mark.parametrize(("status", "code"), [(400, "Throttling"), (503, "RequestLimitExceeded"), (429, "TooMany")])
def test_throttling_is_retried(proxy, connect, status, code):
    connect(proxy.endpoint_url)
    proxy.fail(status, code=code, method="GET")
    exc, lines = check(destination())
    assert_retried(exc, lines, f"{code}: {code} (injected by faultproxy).")


def test_dropped_connection_is_retried(proxy, connect):
    connect(proxy.endpoint_url)
    proxy.drop(method="GET")
    exc, lines = check(destination())
    assert_retried(exc, lines, "ConnectionClosedError: Connection was closed before we received a valid response")


def test_connection_refused_is_retried(connect):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connect(f"http://127.0.0.1:{port}")
    exc, lines = check(destination())
    assert_retried(
        exc, lines, f'EndpointConnectionError: Could not connect to the endpoint URL: "http://127.0.0.1:{port}/'
    )


def test_read_timeout_is_retried(proxy, connect):
    connect(proxy.endpoint_url, read_timeout=1)
    parked = proxy.hold(method="GET")  # the request reaches the proxy, the answer never comes
    try:
        exc, lines = check(destination())
    finally:
        parked.release(forward=False)
    assert_retried(exc, lines, "ReadTimeoutError: Read timeout on endpoint URL:")


def test_connect_timeout_is_retried(connect):
    # A listening socket that never accepts: once its accept queue is full, the kernel drops
    # further SYNs, so the next connect neither succeeds nor is refused.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
                fillers.append(filler)
            connect(f"http://127.0.0.1:{port}", connect_timeout=1)
            exc, lines = check(destination())
        finally:
            for filler in fillers:
                filler.close()
    assert_retried(exc, lines, "ConnectTimeoutError: Connect timeout on endpoint URL:")


def test_the_last_try_says_no_retries_are_left(proxy, connect):
    connect(proxy.endpoint_url)
    proxy.fail(503, method="GET")
    exc, lines = check(destination(), LAST_TRY)
    assert isinstance(exc, s3.DestinationUnavailable)
    assert lines == [
        f"{where()}: check failed: SlowDown: Please reduce your request rate.; the store is unreachable or busy, "
        "no retries left (try 4 of 4): clear this map index once the store answers"
    ]


# -- failed at once: retrying cannot help ---------------------------------------------------------


def test_wrong_secret_fails_at_once(seaweedfs, connect):
    connect(seaweedfs.endpoint_url, secret_key="not-the-secret")
    exc, lines = check(destination())
    assert_failed_at_once(exc, lines, lines[0])
    assert lines[0].startswith(f"{where()}: check failed: SignatureDoesNotMatch"), lines


def test_unknown_access_key_fails_at_once(seaweedfs, connect):
    connect(seaweedfs.endpoint_url, access_key="NOSUCHKEY00000000000")
    exc, lines = check(destination())
    assert_failed_at_once(exc, lines, lines[0])
    assert lines[0].startswith(f"{where()}: check failed: InvalidAccessKeyId"), lines


def test_missing_permission_fails_at_once(seaweedfs, connect):
    forbidden = f"forbidden-{uuid.uuid4().hex[:8]}"  # exists, but the exporter's identity has no rights on it
    admin = seaweedfs.admin_client()
    admin.create_bucket(Bucket=forbidden)
    try:
        connect(seaweedfs.endpoint_url)
        exc, lines = check(destination(forbidden))
    finally:
        admin.delete_bucket(Bucket=forbidden)
    assert_failed_at_once(exc, lines, lines[0])
    assert lines[0].startswith(f"{where(forbidden)}: check failed: AccessDenied"), lines


def test_missing_bucket_fails_at_once(seaweedfs, connect):
    connect(seaweedfs.endpoint_url)
    exc, lines = check(destination(MISSING_BUCKET))
    assert_failed_at_once(exc, lines, lines[0])
    assert lines[0].startswith(f"{where(MISSING_BUCKET)}: check failed: NoSuchBucket"), lines


def test_plain_http_at_an_https_endpoint_fails_at_once(seaweedfs, connect):
    connect(seaweedfs.endpoint_url.replace("http://", "https://"))
    exc, lines = check(destination())
    assert_failed_at_once(exc, lines, lines[0])
    assert lines[0].startswith(f"{where()}: check failed: SSLError: SSL validation failed"), lines
    assert "wrong version number" in lines[0].lower(), lines


def test_untrusted_certificate_fails_at_once(tmp_path, connect):
    # A TLS server with a certificate of a private CA the client does not trust; the handshake is
    # all that happens (the client refuses the certificate).
    _ca, cert, key = make_ca_and_server_cert(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                with contextlib.suppress(OSError), conn, context.wrap_socket(conn, server_side=True):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        connect(f"https://127.0.0.1:{server.getsockname()[1]}")
        exc, lines = check(destination())
    finally:
        stop.set()
        server.close()
        thread.join(10)
    assert_failed_at_once(exc, lines, lines[0])
    assert lines[0].startswith(f"{where()}: check failed: SSLError: SSL validation failed"), lines
    assert "CERTIFICATE_VERIFY_FAILED" in lines[0], lines


@pytest.mark.parametrize(
    ("endpoint_url", "region", "cause"),
    [
        ("htp:/not-a-url", "us-east-1", "cannot use the connection: Invalid endpoint: htp:/not-a-url"),
        (None, "us east 1", "cannot use the connection: Provided region_name 'us east 1' doesn't match"),
    ],
)
def test_invalid_settings_fail_at_once(seaweedfs, monkeypatch, endpoint_url, region, cause):
    value = airflow_env.aws_connection_json(
        endpoint_url or seaweedfs.endpoint_url, EXPORTER.access_key, EXPORTER.secret_key, region=region
    )
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", value)
    exc, lines = check(destination())
    assert_failed_at_once(exc, lines, lines[0])
    assert lines[0].startswith(f"{where()}: {cause}"), lines


def test_undefined_connection_fails_at_once():
    exc, lines = check(destination(conn_id="no_such_connection"))
    assert_failed_at_once(exc, lines, f"{where(conn_id='no_such_connection')}: cannot use the connection: "
                          "connection 'no_such_connection' is not defined")  # fmt: skip


# -- one client, one "credentials retrieved" line ---------------------------------------------------


def test_a_client_reads_the_connection_credentials_once(seaweedfs, connect, capfd):
    connect(seaweedfs.endpoint_url, attempts=5)
    capfd.readouterr()
    client = s3.s3_client(CONN)
    out = "".join(capfd.readouterr())  # Airflow's structlog setup writes the provider's lines to stdout
    assert out.count("credentials retrieved") == 1, out
    assert f"AWS Connection (conn_id='{CONN}', conn_type='aws') credentials retrieved from login and password." in out
    # ...and the client still has the package's defaults merged with the connection's settings.
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (10, 120)
    assert client.meta.config.s3 == {"addressing_style": "path"}
    s3.check_destination(client, bucket=BUCKET, prefix="check")

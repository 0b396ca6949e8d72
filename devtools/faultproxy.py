"""A fault-injecting HTTP/1.1 proxy for S3 endpoints on loopback (tests and demos only).

It sits between boto3 and a real S3 server (SeaweedFS in the tests), forwards every request
unchanged (the SigV4 signature stays valid: the Host header and body are passed through as
sent) and can be programmed while it runs::

    with FaultProxy(seaweedfs.endpoint_url) as proxy:
        client = boto3.client("s3", endpoint_url=proxy.endpoint_url, ...)
        proxy.fail(503, times=2, method="PUT", query="partNumber=")   # two SlowDown answers
        proxy.drop(times=1, method="POST", query="uploadId=", mid_response=True)
        rule = proxy.hold(method="POST", query="uploads")              # park the next CreateMultipartUpload
        rule.wait_held(); ...; rule.release()
        proxy.down()   # every request: connection closed without an answer, until proxy.up()
        proxy.requests(method="PUT", query="partNumber=")              # what reached the proxy

Faults, each for the next ``times`` matching requests (after letting ``skip`` through):

* ``fail(500)`` / ``fail(503)``: an S3 XML error (``InternalError`` / ``SlowDown``); the request
  is read in full and not forwarded, the connection stays usable; ``fail(400, code="Throttling")``:
  the same with another S3 error code and status;
* ``drop()``: the request is read, not forwarded, and the connection is closed without an answer;
  ``drop(mid_response=True)``: the request *is* forwarded and processed by the server, but the
  connection is closed half-way through its answer (through the body, or the status line when
  the answer has no body);
* ``hold()``: the request waits in the proxy until ``release()`` (then it is forwarded) or
  ``clear()`` (then its connection is closed unanswered, as if the client had died);
* ``down()`` / ``down_when(...)``: S3 is unreachable: every request, on new and open
  connections, is closed without an answer, for ``seconds``, until ``until_times`` requests
  matching ``until`` were refused, or until ``up()``.

Every request is logged (:class:`Record`) with the SDK's ``amz-sdk-invocation-id`` and
``amz-sdk-request`` (``attempt=N; max=M``) headers, so a test can see which call was retried
and how often. :class:`TcpRelay` does the same for a plain TCP service (PostgreSQL): it can
freeze the server's stream after a number of bytes. Pure standard library: threads and sockets.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["FaultProxy", "Match", "Record", "Rule", "TcpRelay"]

ERRORS = {
    500: ("Internal Server Error", "InternalError", "We encountered an internal error. Please try again."),
    503: ("Slow Down", "SlowDown", "Please reduce your request rate."),
}
# Any other S3-style error, with its own code: fail(400, code="Throttling").
REASONS = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}  # fmt: skip
MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Match:
    """Which requests a rule applies to: method (exact), substrings of the path and raw query."""

    method: str | None = None
    query: str | None = None
    path: str | None = None

    def __call__(self, method: str, path: str, query: str) -> bool:
        return (
            (self.method is None or method.upper() == self.method.upper())
            and (self.query is None or self.query in query)
            and (self.path is None or self.path in path)
        )


@dataclass
class Rule:
    """One programmed fault. ``times=None`` means every matching request."""

    action: str  # "error", "drop", "drop_mid_response", "hold", "down"
    match: Match
    times: int | None = 1
    skip: int = 0
    status: int = 500
    code: str | None = None  # the S3 error code of an "error" rule, if not ERRORS[status]'s
    down_seconds: float | None = None
    down_until: Match | None = None
    down_until_times: int = 1
    seen: int = 0
    applied: int = 0
    _held: threading.Event = field(default_factory=threading.Event, repr=False)
    _released: threading.Event = field(default_factory=threading.Event, repr=False)
    _forward: bool = True

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.applied >= self.times

    def wait_held(self, timeout: float = 60.0) -> None:
        """Block until a request is parked by this ``hold`` rule (raises on timeout)."""
        if not self._held.wait(timeout):
            raise TimeoutError(f"no request matching {self.match} reached the proxy within {timeout:.0f}s")

    def release(self, *, forward: bool = True) -> None:
        """Let parked requests go on to the server (``forward=False``: close them without an answer)."""
        self._forward = forward
        self._released.set()


@dataclass(frozen=True)
class Record:
    """One request seen by the proxy and what became of it."""

    method: str
    path: str
    query: str
    outcome: str  # "200" (forwarded, upstream status), "fault 503", "dropped", "dropped mid-response", "down"
    invocation_id: str
    attempt: str  # the SDK's amz-sdk-request header, e.g. "attempt=2; max=8"
    connection: int


class _Closed(Exception):
    """The peer closed the connection."""


def _read_head(rfile: Any) -> bytes | None:
    """Bytes up to and including the blank line, or None on a clean EOF before any byte."""
    lines = []
    size = 0
    while True:
        line = rfile.readline(MAX_HEAD)
        if not line:
            if lines:
                raise _Closed("connection closed inside a message head")
            return None
        if not lines and line in (b"\r\n", b"\n"):
            continue  # tolerate stray CRLF between messages
        lines.append(line)
        size += len(line)
        if size > MAX_HEAD:
            raise _Closed("message head too large")
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _headers(head: bytes) -> tuple[str, dict[str, str]]:
    first, *rest = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in rest:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return first, headers


def _read_exact(rfile: Any, n: int) -> bytes:
    data = rfile.read(n) if n else b""
    if len(data) != n:
        raise _Closed("connection closed inside a message body")
    return data


def _read_chunked(rfile: Any) -> bytes:
    """A chunked body, framing included (relayed as is)."""
    out = []
    while True:
        line = rfile.readline(MAX_HEAD)
        if not line:
            raise _Closed("connection closed inside a chunked body")
        out.append(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, up to the blank line
                trailer = rfile.readline(MAX_HEAD)
                if not trailer:
                    raise _Closed("connection closed inside chunked trailers")
                out.append(trailer)
                if trailer in (b"\r\n", b"\n"):
                    return b"".join(out)
        out.append(_read_exact(rfile, size + 2))


def _read_body(rfile: Any, headers: dict[str, str], *, until_close: bool) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _read_chunked(rfile)
    if "content-length" in headers:
        return _read_exact(rfile, int(headers["content-length"]))
    return rfile.read() if until_close else b""


class FaultProxy:
    """A threaded HTTP/1.1 proxy on 127.0.0.1 in front of ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", port: int = 0, upstream_timeout: float = 120.0):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream = (parts.hostname, parts.port)
        self.upstream_timeout = upstream_timeout
        self._bind = (host, port)
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._log: list[Record] = []
        self._sockets: set[socket.socket] = set()
        self._conn_ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._down = False
        self._down_deadline: float | None = None
        self._down_until: Match | None = None
        self._down_until_left = 0
        self._stopped = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(self._bind)
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            for rule in self._rules:
                rule.release()
            sockets = list(self._sockets)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._listener is not None, "proxy not started"
        return self._listener.getsockname()[1]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ programming
    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def fail(
        self, status: int = 500, *, times: int | None = 1, skip: int = 0, method: str | None = None,
        query: str | None = None, path: str | None = None, code: str | None = None,
    ) -> Rule:  # fmt: skip
        """Answer matching requests with 500 InternalError or 503 SlowDown (S3 XML error bodies), or
        with the S3 error ``code`` and a status of REASONS (e.g. ``fail(400, code="Throttling")``)."""
        if (status not in ERRORS) if code is None else (status not in REASONS):
            raise ValueError(f"status must be one of {sorted(ERRORS if code is None else REASONS)}")
        rule = Rule("error", Match(method, query, path), times=times, skip=skip, status=status, code=code)
        return self._add(rule)

    def drop(
        self, *, times: int | None = 1, skip: int = 0, mid_response: bool = False, method: str | None = None,
        query: str | None = None, path: str | None = None,
    ) -> Rule:  # fmt: skip
        """Close the connection without an answer (``mid_response``: after forwarding, half-way through
        the server's answer, so the server did act on the request)."""
        action = "drop_mid_response" if mid_response else "drop"
        return self._add(Rule(action, Match(method, query, path), times=times, skip=skip))

    def hold(
        self, *, times: int | None = 1, skip: int = 0, method: str | None = None, query: str | None = None,
        path: str | None = None,
    ) -> Rule:  # fmt: skip
        """Park matching requests until ``rule.release()``; ``rule.wait_held()`` waits for the first."""
        return self._add(Rule("hold", Match(method, query, path), times=times, skip=skip))

    def down_when(
        self, *, skip: int = 0, method: str | None = None, query: str | None = None, path: str | None = None,
        seconds: float | None = None, until: Match | None = None, until_times: int = 1,
    ) -> Rule:  # fmt: skip
        """Go down when a matching request arrives (that request is refused too)."""
        return self._add(
            Rule("down", Match(method, query, path), times=1, skip=skip, down_seconds=seconds, down_until=until,
                 down_until_times=until_times)
        )  # fmt: skip

    def down(self, seconds: float | None = None, *, until: Match | None = None, until_times: int = 1) -> None:
        """Refuse everything now: for ``seconds``, until ``until_times`` requests matching ``until``
        were refused, or until :meth:`up`."""
        with self._lock:
            self._go_down(seconds, until, until_times)

    def _go_down(self, seconds: float | None, until: Match | None, until_times: int) -> None:
        self._down = True
        self._down_deadline = time.monotonic() + seconds if seconds is not None else None
        self._down_until = until
        self._down_until_left = until_times

    def up(self) -> None:
        with self._lock:
            self._down = False

    @property
    def is_down(self) -> bool:
        with self._lock:
            return self._down

    def clear(self) -> None:
        """Healthy again: no rules, not down; parked requests are closed unanswered. The log is kept."""
        with self._lock:
            rules, self._rules = self._rules, []
            self._down = False
        for rule in rules:
            if not rule._released.is_set():
                rule.release(forward=False)

    # ------------------------------------------------------------------ the log
    @property
    def log(self) -> list[Record]:
        with self._lock:
            return list(self._log)

    def requests(
        self, *, method: str | None = None, query: str | None = None, path: str | None = None,
        outcome: str | None = None,
    ) -> list[Record]:  # fmt: skip
        match = Match(method, query, path)
        return [r for r in self.log if match(r.method, r.path, r.query) and (outcome is None or r.outcome == outcome)]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ------------------------------------------------------------------ serving
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.add(sock)
            conn_id = next(self._conn_ids)
            threading.Thread(
                target=self._serve, args=(sock, conn_id), name=f"faultproxy-{conn_id}", daemon=True
            ).start()

    def _decide(self, method: str, path: str, query: str) -> Rule | str | None:
        """'down' if S3 is down, else the first applicable rule (counted), else None."""
        with self._lock:
            if self._down and self._down_deadline is not None and time.monotonic() >= self._down_deadline:
                self._down = False
            if self._down:
                if self._down_until is not None and self._down_until(method, path, query):
                    self._down_until_left -= 1
                    if self._down_until_left <= 0:
                        self._down = False  # this request is still refused; the next one gets through
                return "down"
            for rule in self._rules:
                if rule.exhausted or not rule.match(method, path, query):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                rule.applied += 1
                if rule.action == "down":
                    self._go_down(rule.down_seconds, rule.down_until, rule.down_until_times)
                    return "down"
                return rule
            return None

    def _record(self, method: str, path: str, query: str, outcome: str, headers: dict[str, str], conn: int) -> None:
        rec = Record(
            method, path, query, outcome, headers.get("amz-sdk-invocation-id", ""), headers.get("amz-sdk-request", ""),
            conn,
        )  # fmt: skip
        with self._lock:
            self._log.append(rec)

    def _serve(self, sock: socket.socket, conn_id: int) -> None:
        upstream: socket.socket | None = None
        upstream_r: Any = None
        rfile = sock.makefile("rb")
        try:
            while not self._stopped.is_set():
                head = _read_head(rfile)
                if head is None:
                    return
                request_line, headers = _headers(head)
                method, target, *_ = request_line.split(" ")
                path, _, query = target.partition("?")
                decision = self._decide(method, path, query)
                if decision == "down":
                    self._record(method, path, query, "down", headers, conn_id)
                    return  # close without reading the body or answering
                if headers.get("expect", "").lower() == "100-continue":
                    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = _read_body(rfile, headers, until_close=False)
                rule = decision if isinstance(decision, Rule) else None
                if rule is not None and rule.action == "error":
                    self._record(method, path, query, f"fault {rule.status}", headers, conn_id)
                    sock.sendall(self._error_response(rule.status, method, path, rule.code))
                    continue
                if rule is not None and rule.action == "drop":
                    self._record(method, path, query, "dropped", headers, conn_id)
                    return
                if rule is not None and rule.action == "hold":
                    rule._held.set()
                    rule._released.wait()
                    if self._stopped.is_set() or not rule._forward:
                        self._record(method, path, query, "dropped after hold", headers, conn_id)
                        return
                # Forward: the head as sent (Host and signed headers untouched) minus Expect,
                # which SigV4 never signs and which this proxy already answered.
                lines = head.split(b"\r\n")
                forwarded = b"\r\n".join(ln for ln in lines if not ln.lower().startswith(b"expect:")) + body
                if upstream is None:
                    upstream = socket.create_connection(self.upstream, timeout=self.upstream_timeout)
                    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    upstream_r = upstream.makefile("rb")
                upstream.sendall(forwarded)
                response, cut, status, close_after = self._read_response(upstream_r, method)
                if close_after:
                    with contextlib.suppress(OSError):
                        upstream.close()
                    upstream = None
                if rule is not None and rule.action == "drop_mid_response":
                    self._record(method, path, query, "dropped mid-response", headers, conn_id)
                    sock.sendall(response[:cut])
                    return
                self._record(method, path, query, str(status), headers, conn_id)
                sock.sendall(response)
                if close_after:
                    return
        except (_Closed, OSError, ValueError):
            return
        finally:
            with self._lock:
                self._sockets.discard(sock)
            for s in (sock, upstream):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()

    def _read_response(self, rfile: Any, method: str) -> tuple[bytes, int, int, bool]:
        """(raw response, where a mid-response drop cuts it, status, close the upstream after).

        The cut lies half-way through the body, or through the status line when there is no
        body: a head cut between two header lines would look complete to http.client."""
        head = _read_head(rfile)
        if head is None:
            raise _Closed("upstream closed the connection without an answer")
        status_line, headers = _headers(head)
        status = int(status_line.split(" ")[1])
        close = headers.get("connection", "").lower() == "close"
        if method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
            body = _read_body(rfile, headers, until_close=True)
            close = close or not framed
        cut = len(head) + len(body) // 2 if body else max(1, head.index(b"\r\n") // 2)
        return head + body, cut, status, close

    def _error_response(self, status: int, method: str, path: str, code: str | None = None) -> bytes:
        if code is None:
            reason, code, message = ERRORS[status]
        else:
            reason, message = REASONS[status], f"{code} (injected by faultproxy)."
        request_id = f"faultproxy{next(self._request_ids):08d}"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message><Resource>{path}</Resource>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            f"x-amz-request-id: {request_id}\r\nServer: faultproxy\r\n\r\n"
        ).encode()
        return head if method.upper() == "HEAD" else head + body


class TcpRelay:
    """A plain TCP relay on 127.0.0.1 (e.g. in front of PostgreSQL) that can stop passing the
    server's bytes to the client after ``pause_after(n)`` bytes, to freeze a stream half-way.

    While paused the relay stops reading from the server, so the server blocks writing (for
    PostgreSQL: ``wait_event = 'ClientWrite'``) with the rest of its answer unsent. The relay's
    server-side receive buffer is kept small so little data hides in the kernel.
    """

    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1", recv_buffer: int = 64 * 1024):
        self.upstream = upstream
        self.recv_buffer = recv_buffer
        self._listener = socket.create_server((host, 0))
        self._lock = threading.Lock()
        self._pause_at: int | None = None
        self._passed = 0  # server-to-client bytes since pause_after()
        self._running = threading.Event()
        self._running.set()
        self.paused = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._stopped = False

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def start(self) -> TcpRelay:
        threading.Thread(target=self._accept_loop, name="tcprelay-accept", daemon=True).start()
        return self

    def __enter__(self) -> TcpRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pause_after(self, n_bytes: int) -> None:
        """Stop relaying server bytes once ``n_bytes`` more have passed (any connection)."""
        with self._lock:
            self._pause_at, self._passed = n_bytes, 0
            self.paused.clear()

    def resume(self) -> None:
        with self._lock:
            self._pause_at = None
        self.paused.clear()
        self._running.set()

    def stop(self) -> None:
        self._stopped = True
        self.resume()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept_loop(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.recv_buffer)  # before connect
            try:
                server.connect(self.upstream)
            except OSError:
                client.close()
                server.close()
                continue
            with self._lock:
                self._sockets.update((client, server))
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while True:
                if from_server:
                    self._running.wait()
                    with self._lock:
                        budget = None if self._pause_at is None else self._pause_at - self._passed
                    if budget is not None and budget <= 0:
                        self._running.clear()
                        self.paused.set()
                        continue
                    data = src.recv(min(65536, budget) if budget else 65536)
                else:
                    data = src.recv(65536)
                if not data:
                    break
                if from_server:
                    with self._lock:
                        self._passed += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

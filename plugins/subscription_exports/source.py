"""The SQL source: run a query from ``include/sql/`` with bound parameters and stream its rows as CSV.

Both dialects produce the same intermediate CSV (header row, NULL as an empty unquoted field),
which the transform parses in chunks. PostgreSQL streams with ``COPY (query) TO STDOUT``, the
fastest way out of the server; SQLite, used by the embedded demo, streams ``fetchmany`` batches.
The producer runs in a thread and hands its bytes over through a few reused buffers
(``ByteChannel``), so the database, the transform and the upload work at the same time and only a
few chunks are ever in memory.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import logging
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from subscription_exports import INCLUDE_DIR
from subscription_exports.windows import Window

log = logging.getLogger(__name__)

SQL_DIR = INCLUDE_DIR / "sql"
DIALECTS = ("postgres", "sqlite")
PIPE_BUFFER = 1 << 20  # the producer's write buffer, and each buffer of the channel
CHANNEL_BUFFERS = 2  # one filled by the producer while the consumer reads the other
READ_BUFFER = 64 << 10  # the consumer's: reads of a parse block's size go to the channel directly


class SourceError(RuntimeError):
    """The source database failed or returned an unexpected shape."""


@dataclass(frozen=True)
class QueryParams:
    """Values bound into the SQL (never formatted into its text)."""

    app_id: str
    window: Window
    event_types: tuple[str, ...]
    exclude_historical: bool
    include_without_profile: bool
    # Whether the file has an ``attributes`` column: when not, the SQL returns NULL for it, so the
    # profiles' attribute JSON is neither read nor sent nor parsed (about 10% of an ``events`` stream).
    with_attributes: bool

    def for_dialect(self, dialect: str) -> dict[str, Any]:
        start, end = self.window.start, self.window.end
        if dialect == "postgres":
            return {
                "app_id": self.app_id,
                "window_start": start,
                "window_end": end,
                "date_start": start.date(),
                "date_end": end.date(),
                "event_types": list(self.event_types),
                "exclude_historical": self.exclude_historical,
                "include_without_profile": self.include_without_profile,
                "with_attributes": self.with_attributes,
            }
        # SQLite stores UTC timestamps as fixed-width text, so text comparison is time comparison.
        return {
            "app_id": self.app_id,
            "window_start": start.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "window_end": end.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "date_start": start.date().isoformat(),
            "date_end": end.date().isoformat(),
            "event_types": json.dumps(list(self.event_types)),
            "exclude_historical": int(self.exclude_historical),
            "include_without_profile": int(self.include_without_profile),
            "with_attributes": int(self.with_attributes),
        }


def read_sql(dialect: str, table: str, sql_dir: Path = SQL_DIR) -> str:
    path = sql_dir / dialect / f"{table}.sql"
    try:
        return path.read_text(encoding="utf-8").strip().rstrip(";")
    except FileNotFoundError:
        raise SourceError(f"no SQL for table '{table}' and dialect '{dialect}': {path} is missing") from None


def dialect_of(conn_type: str | None) -> str:
    kind = (conn_type or "").lower()
    if kind in {"postgres", "postgresql"}:
        return "postgres"
    if kind == "sqlite":
        return "sqlite"
    raise SourceError(f"source connection type {conn_type!r} is not supported (use 'postgres' or 'sqlite')")


def connect(conn_id: str) -> tuple[str, Any]:
    """Open a DB-API connection through the Airflow connection ``conn_id``; returns (dialect, connection)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    dialect = dialect_of(conn.conn_type)
    if dialect == "postgres":
        return dialect, _connect_postgres(conn_id, conn)
    import sqlite3

    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    hook = SqliteHook(sqlite_conn_id=conn_id)
    # Open read-only: the exporter never writes to the source.
    uri = hook.get_uri().replace("sqlite:///", "file:", 1)
    sep = "&" if "?" in uri else "?"
    return dialect, sqlite3.connect(f"{uri}{sep}mode=ro", uri=True, check_same_thread=False)


# Extras only the postgres provider's hook understands (token-based sign-in, SQLAlchemy, cursor
# factories): they are not libpq options. A connection with a sign-in extra is opened by the hook.
HOOK_EXTRAS = frozenset(
    {"iam", "redshift", "redshift-serverless", "cluster-identifier", "workgroup-name", "aws_conn_id",
     "azure_conn_id", "sqlalchemy_scheme", "sqlalchemy_query", "cursor", "enable_log_db_messages"}
)  # fmt: skip
HOOK_SIGN_IN_EXTRAS = ("iam", "azure_conn_id")


def _connect_postgres(conn_id: str, conn: Any) -> Any:
    """A psycopg2 connection with the arguments ``PostgresHook.get_conn`` builds (host, port, login,
    password, schema as the database, every other extra as a libpq option).

    Why not the hook: it imports psycopg 3, psycopg2, the common SQL provider and sqlparse,
    about 17 MB of every export task's memory for one ``connect``, and its psycopg 3 connection reads
    COPY one row per Python call (psycopg2's ``copy_expert`` loops in C without the GIL: about
    1 CPU-second less per million rows). A connection that signs in with a token (``iam``,
    ``azure_conn_id``) is opened by the hook, which knows how.
    """
    extras = conn.extra_dejson
    if any(extras.get(name) for name in HOOK_SIGN_IN_EXTRAS):
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id=conn_id).get_conn()
    import psycopg2

    options = {name: value for name, value in extras.items() if name not in HOOK_EXTRAS}
    return psycopg2.connect(
        host=conn.host, port=conn.port, user=conn.login, password=conn.password, dbname=conn.schema, **options
    )


def _copy_postgres(connection: Any, sql: str, params: dict[str, Any], out: BinaryIO) -> None:
    """``COPY (query) TO STDOUT`` with the query's parameters bound by the driver.

    COPY cannot take server-side parameters, so both drivers bind them client-side with
    proper quoting (psycopg 3 ``cursor.copy(sql, params)``, psycopg2 ``mogrify``), exactly as
    their ``execute`` does; values are never formatted into the SQL text by this package.
    """
    copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')"
    with connection.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        if hasattr(cur, "copy"):  # psycopg 3 (the postgres provider's choice when installed)
            with cur.copy(copy_sql, params) as copy:
                for block in copy:
                    out.write(block)
        else:  # psycopg2
            try:
                cur.copy_expert(cur.mogrify(copy_sql, params).decode("utf-8"), out, size=PIPE_BUFFER)
            except Exception as exc:
                # A connection lost mid-COPY reaches psycopg2 as "error with status PGRES_COPY_OUT and no
                # message from the libpq"; libpq's own message says what happened.
                detail = getattr(getattr(connection, "info", None), "error_message", "")
                if detail and "no message from the libpq" in str(exc):
                    raise type(exc)(detail.strip()) from exc
                raise
    connection.rollback()  # read-only work; end the transaction


def _dump_sqlite(connection: Any, sql: str, params: dict[str, Any], out: BinaryIO, batch_rows: int = 5000) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    # "\r\n" makes the csv module quote values holding a lone CR as well as LF.
    writer = csv.writer(text, lineterminator="\r\n")
    cur = connection.execute(sql, params)
    writer.writerow([d[0] for d in cur.description])
    while rows := cur.fetchmany(batch_rows):
        writer.writerows(rows)
    text.flush()
    text.detach()
    cur.close()


class ByteChannel:
    """Bytes from one producer thread to one consumer thread, in order, through ``buffers`` reused
    buffers of ``size`` bytes: ``writer`` and ``reader`` are raw streams for ``io.BufferedWriter`` and
    ``io.BufferedReader``.

    Why not an OS pipe: its 64 KiB buffer woke the two threads in turn about 7,000 times per
    447 MB, and every byte crossed the kernel twice: about 0.3 CPU-s more per million ``events``
    rows than this (docs/performance.md). The semantics are a pipe's: a write waits while every
    buffer is full, a read waits for bytes or for the writer's close (then returns 0: end of
    stream), and once the reader is closed a write raises ``BrokenPipeError``, so a producer that
    is blocked or still writing stops.
    """

    def __init__(self, *, buffers: int = CHANNEL_BUFFERS, size: int = PIPE_BUFFER) -> None:
        self._turn = threading.Condition()
        self._free: deque[bytearray] = deque(bytearray(size) for _ in range(buffers))
        self._full: deque[tuple[bytearray, int]] = deque()
        self._ended = False  # the writer closed: end of stream once the full buffers are read
        self._stopped = False  # the reader closed
        self._current: tuple[bytearray, int, int] | None = None  # (buffer, read up to, length)
        self.writer = _ChannelWriter(self)
        self.reader = _ChannelReader(self)

    def write(self, data: memoryview) -> int:
        with self._turn:
            self._turn.wait_for(lambda: self._free or self._stopped)
            if self._stopped:
                raise BrokenPipeError(errno.EPIPE, "the consumer closed the stream")
            buffer = self._free.popleft()
        size = min(len(data), len(buffer))
        with memoryview(buffer) as view, memoryview(data) as source:
            view[:size] = source.cast("B")[:size]
        with self._turn:
            self._full.append((buffer, size))
            self._turn.notify_all()
        return size

    def readinto(self, target: memoryview) -> int:
        if self._current is None or self._current[1] == self._current[2]:
            with self._turn:
                if self._current is not None:
                    self._free.append(self._current[0])
                    self._current = None
                    self._turn.notify_all()
                self._turn.wait_for(lambda: self._full or self._ended)
                if not self._full:
                    return 0
                buffer, length = self._full.popleft()
            self._current = (buffer, 0, length)
        buffer, start, length = self._current
        size = min(len(target), length - start)
        with memoryview(buffer) as view, memoryview(target) as into:
            into.cast("B")[:size] = view[start : start + size]
        self._current = (buffer, start + size, length)
        return size

    def end(self) -> None:
        with self._turn:
            self._ended = True
            self._turn.notify_all()

    def stop(self) -> None:
        with self._turn:
            self._stopped = True
            self._full.clear()
            self._turn.notify_all()


class _ChannelWriter(io.RawIOBase):
    def __init__(self, channel: ByteChannel) -> None:
        self._channel = channel

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._channel.write(data)

    def close(self) -> None:
        if not self.closed:
            self._channel.end()
        super().close()


class _ChannelReader(io.RawIOBase):
    def __init__(self, channel: ByteChannel) -> None:
        self._channel = channel

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        return self._channel.readinto(target)

    def close(self) -> None:
        if not self.closed:
            self._channel.stop()
        super().close()


@contextlib.contextmanager
def stream_csv(dialect: str, connection: Any, sql: str, params: dict[str, Any]) -> Iterator[BinaryIO]:
    """Yield a readable binary stream of the query's rows as CSV (header first).

    If the consumer stops early (an upload failed), the query is cancelled and the producer ends.
    Errors of the producer are raised when the stream is closed.
    """
    channel = ByteChannel()
    reader = io.BufferedReader(channel.reader, buffer_size=READ_BUFFER)
    writer = io.BufferedWriter(channel.writer, buffer_size=PIPE_BUFFER)
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            if dialect == "postgres":
                _copy_postgres(connection, sql, params, writer)
            else:
                _dump_sqlite(connection, sql, params, writer)
        except BaseException as exc:  # re-raised in the consumer thread
            failure.append(exc)
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    thread = threading.Thread(target=produce, name="source-producer", daemon=True)
    thread.start()
    finished = False
    failed_first = False
    try:
        yield reader
        finished = True
    finally:
        if not finished:
            # A consumer error caused by a truncated stream is really the producer's failure.
            thread.join(timeout=0.5)
            failed_first = bool(failure)
            _cancel(dialect, connection)
        reader.close()  # a blocked producer gets BrokenPipeError (EPIPE) and stops
        thread.join()
        if failure and (finished or failed_first):
            exc = failure[0]
            raise SourceError(f"source query failed: {_one_line(exc)}") from exc


def _cancel(dialect: str, connection: Any) -> None:
    with contextlib.suppress(Exception):
        if dialect == "postgres":
            connection.cancel()
        else:
            connection.interrupt()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]

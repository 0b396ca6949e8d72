"""Writers: PostgreSQL ``COPY FROM STDIN`` streamed from a producer thread, SQLite ``executemany``."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from devtools.synthetic.schema import COLUMNS

BATCH_ROWS = 50_000
# COPY's NULL marker. Python's str(None) is "None", so a row becomes CSV with one C-level join;
# the text "None" (a hostile value) is quoted, and PostgreSQL never reads a quoted value as NULL.
_PG_NULL = "None"


def _batches(rows: Iterable[list], size: int) -> Iterator[list[list]]:
    batch: list[list] = []
    append = batch.append
    for row in rows:
        append(row)
        if len(batch) >= size:
            yield batch
            batch = []
            append = batch.append
    if batch:
        yield batch


class _ChunkReader:
    """File-like object for copy_expert, fed CSV chunks by a producer thread through a queue."""

    def __init__(self, q: queue.Queue):
        self.q = q
        self.buf = b""
        self.pos = 0
        self.done = False

    def read(self, size: int = -1) -> bytes:
        while self.pos >= len(self.buf):
            if self.done:
                return b""
            item = self.q.get()
            if item is None:
                self.done = True
                return b""
            if isinstance(item, BaseException):
                self.done = True
                raise item
            self.buf, self.pos = item, 0
        if size is None or size < 0:
            size = len(self.buf) - self.pos
        out = self.buf[self.pos : self.pos + size]
        self.pos += len(out)
        return out

    readline = read


def _csv_field(v: object) -> str:
    if v is None:
        return _PG_NULL
    if type(v) is str:
        if v == _PG_NULL or v == "" or '"' in v or "," in v or "\n" in v or "\r" in v:
            return '"' + v.replace('"', '""') + '"'
        return v
    return str(v)  # int, or float whose repr is the exact decimal


def csv_line(row: list) -> str:
    """One row as a PostgreSQL COPY CSV line (NULL unquoted None, every text value exact)."""
    return ",".join(map(_csv_field, row))


def _csv_chunks(rows: Iterable[list], count: list[int], ncols: int) -> Iterator[bytes]:
    commas = ncols - 1
    for batch in _batches(rows, BATCH_ROWS):
        lines = []
        append = lines.append
        for row in batch:
            # Fast path: nothing to quote. str(None) is the NULL marker; ints and floats print exactly.
            line = ",".join(map(str, row))
            if line.count(",") != commas or '"' in line or "\n" in line or "\r" in line or "None" in row:
                line = ",".join(map(_csv_field, row))
            append(line)
        append("")
        count[0] += len(batch)
        yield "\n".join(lines).encode("utf-8")


def _pg_copy(conn: Any, table: str, rows: Iterable[list]) -> int:
    """Stream ``rows`` into ``table`` with COPY FROM STDIN; generation overlaps the server's work."""
    cols = ", ".join(COLUMNS[table])
    sql = f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv, NULL '{_PG_NULL}', ENCODING 'UTF8')"
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    count = [0]

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in _csv_chunks(rows, count, len(COLUMNS[table])):
                if not put(chunk):
                    return
            put(None)
        except BaseException as exc:
            put(exc)

    thread = threading.Thread(target=produce, name=f"synthetic-{table}", daemon=True)
    thread.start()
    try:
        with conn.cursor() as cur:
            cur.copy_expert(sql, _ChunkReader(q), size=1 << 20)
    finally:
        stop.set()
        thread.join()
    return count[0]


def _sqlite_insert(conn: Any, table: str, rows: Iterable[list]) -> int:
    cols = COLUMNS[table]
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    n = 0
    for batch in _batches(rows, BATCH_ROWS):
        conn.executemany(sql, batch)
        n += len(batch)
    return n

"""A big, hostile day: every streaming boundary of an export gets a hostile value placed on it.

One `events` day of about 20 MB (more than three 5 MiB multipart parts), from PostgreSQL and from
SQLite, exported by the real exporter into SeaweedFS and compared byte for byte with
tests/reference.py. Before the export, the test moves hostile values exactly onto:

* the source stream's 512 KiB read boundaries (the parse blocks): the CR of a CRLF, the middle of a
  4-byte character, the first quote of a doubled quote, a lone CR at a value's end, in turn, each
  as the last byte before a boundary;
* the output's multipart part boundaries (every 5 MiB of the file), the same way;
* SQLite's fetch batches (rows 5000k-1 and 5000k of the result).

Placement works on the real streams: every row's `product_id` gets a unique marker, the streams
are dumped through the exporter's own source and transform, and the rows before each boundary are
padded so the hostile byte lands on it; a second dump proves it did.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import re
import sqlite3
from typing import Any

import pytest
import reference as ref
from conftest import EXPORTER
from parquet_check import assert_same_values

from devtools.synthetic import generate
from subscription_exports import exporter, parsing, source, transform
from subscription_exports.config import validate_destination
from subscription_exports.integrations import S3_EXPORT
from subscription_exports.s3 import DEFAULT_PART_SIZE
from subscription_exports.windows import day_window

pytestmark = pytest.mark.system

IOS = "com.acme.ios"
DAY = dt.date(2026, 3, 7)
ROWS = 45_000  # about 20 MB of events CSV in the window: four multipart parts
SQLITE_BATCH = 5000  # rows per fetchmany in source._dump_sqlite
SPEC = S3_EXPORT.table("events")
DESTINATION = {"name": "big", "conn_id": "unused", "bucket": "exports", "folder": "big-hostile", "app_id": IOS}
DEST = validate_destination(DESTINATION, S3_EXPORT, origin="test")
WINDOW = day_window(DAY)
MARK = re.compile(rb"\x02([^\x02\x03]+)\x03")
MARGIN = 3000  # a padded row starts at least this many bytes before its boundary
# (token after the pad, offset in the stream of the byte that must end up just before the boundary)
VARIANTS = [
    ('\r\nafter a CRLF, "quoted"', 0),  # the CR of a CRLF
    ("😀 split", 1),  # the second byte of a 4-byte character
    ('"q" doubled', 0),  # the first quote of a doubled quote
    ("\r", 0),  # a lone CR at a value's end
]


class Source:
    def __init__(self, dialect: str, url: str) -> None:
        self.dialect, self.url = dialect, url

    def connect(self) -> Any:
        if self.dialect == "postgres":
            import psycopg2

            return psycopg2.connect(self.url)
        return sqlite3.connect(self.url.removeprefix("sqlite:///"), check_same_thread=False)

    def execute(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.executemany(sql if self.dialect == "postgres" else sql.replace("%s", "?"), rows)
            conn.commit()
        finally:
            conn.close()

    def streams(self) -> tuple[bytes, bytes]:
        """(the source's intermediate CSV, the exported file), through the exporter's own code."""
        sql, params = exporter.source_query(S3_EXPORT, SPEC, DEST, WINDOW, self.dialect)
        conn = self.connect()
        try:
            with source.stream_csv(self.dialect, conn, sql, params) as stream:
                intermediate = stream.read()
        finally:
            conn.close()
        options = exporter.shape_options(S3_EXPORT, SPEC, DEST)
        out = [transform.encode_header(SPEC.header(with_attributes=False))]
        for batch in parsing.open_chunks(io.BytesIO(intermediate), transform.source_columns(SPEC)):
            out.append(transform.encode_rows(transform.shape(batch, SPEC, options)))
        return intermediate, b"".join(out)


def marker_offsets(stream: bytes) -> dict[str, int]:
    return {m.group(1).decode(): m.end() for m in MARK.finditer(stream)}


def row_before(offsets: dict[str, int], limit: int) -> str:
    """The row whose marker ends last at or before ``limit``."""
    return max((e for e, offset in offsets.items() if offset <= limit), key=offsets.__getitem__)


def place_hostile_values(src: Source) -> list[tuple[str, int]]:
    """Pad rows so hostile bytes sit right before every boundary; returns (stream, boundary) placed."""
    src.execute("UPDATE events SET product_id = %s || event_id || %s || COALESCE(product_id, '')", [("\x02", "\x03")])
    intermediate, output = src.streams()
    rows_in, rows_out = marker_offsets(intermediate), marker_offsets(output)
    order = list(rows_in)  # event ids in export order
    targets = [("source", b) for b in range(parsing.CHUNK_BYTES, len(intermediate) - MARGIN, parsing.CHUNK_BYTES)]
    targets += [("file", b) for b in range(DEFAULT_PART_SIZE, len(output) - MARGIN, DEFAULT_PART_SIZE)]
    assert len([t for t in targets if t[0] == "file"]) >= 3, "the day must span more than three parts"
    chosen: dict[str, tuple[str, int, int]] = {}  # event id -> (stream, boundary, variant)

    # In export order, with the padding of earlier rows estimated (pass 2 computes it exactly).
    def in_source(target: tuple[str, int]) -> int:
        return target[1] if target[0] == "source" else rows_in[row_before(rows_out, target[1])]

    targets.sort(key=in_source)
    # Where a part boundary falls next to a parse block boundary in the source (the two streams are
    # nearly the same size), one row cannot sit on both: the part boundary keeps it.
    targets = [
        t for t in targets
        if t[0] == "file" or all(o[0] == "source" or abs(in_source(o) - t[1]) > 2 * MARGIN for o in targets)
    ]  # fmt: skip
    shift = 0
    for n, (stream, boundary) in enumerate(targets):
        offsets = rows_in if stream == "source" else rows_out
        event_id = row_before({e: o for e, o in offsets.items() if e not in chosen}, boundary - MARGIN - shift)
        chosen[event_id] = (stream, boundary, n % len(VARIANTS))
        shift = boundary - 1 - offsets[event_id]
    fetch_edges = set()
    if src.dialect == "sqlite":
        fetch_edges = {
            order[i] for k in range(1, len(order) // SQLITE_BATCH + 1) for i in (k * SQLITE_BATCH - 1, k * SQLITE_BATCH)
        }
        fetch_edges -= set(chosen)

    def value(event_id: str, pad: int, variant: int) -> str:
        return f"\x02{event_id}\x03" + "x" * pad + VARIANTS[variant][0]

    # Pass 1: tokens without padding, to learn where each hostile byte falls.
    rows = [(value(e, 0, v), e) for e, (_, _, v) in chosen.items()]
    rows += [(value(e, 0, i % len(VARIANTS)) + '\r\n"😀\r', e) for i, e in enumerate(sorted(fetch_edges))]
    src.execute("UPDATE events SET product_id = %s WHERE event_id = %s", rows)
    intermediate, output = src.streams()
    at = {"source": marker_offsets(intermediate), "file": marker_offsets(output)}
    # Pass 2: pad in export order; each pad shifts every later byte of both streams by its length.
    shift, pads = 0, {}
    for event_id in sorted(chosen, key=at["source"].get):
        stream, boundary, variant = chosen[event_id]
        pad = boundary - 1 - (at[stream][event_id] + VARIANTS[variant][1] + shift)
        assert pad >= 0, f"test bug: no room to pad row {event_id} before the {stream} boundary {boundary}"
        pads[event_id] = pad
        shift += pad
    src.execute(
        "UPDATE events SET product_id = %s WHERE event_id = %s",
        [(value(e, pads[e], chosen[e][2]), e) for e in chosen],
    )
    intermediate, output = src.streams()
    placed = []
    streams = {"source": intermediate, "file": output}
    for event_id, (stream, boundary, variant) in chosen.items():
        data = streams[stream]
        start = marker_offsets(data)[event_id] + pads[event_id] + VARIANTS[variant][1]
        assert start == boundary - 1, f"{stream} boundary {boundary}: hostile byte at {start}"
        token = VARIANTS[variant][0].replace('"', '""').encode()
        assert data[start - VARIANTS[variant][1] :].startswith(token)
        placed.append((stream, boundary))
    return placed


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def big_day(request, pg_database_factory, tmp_path_factory) -> tuple[Source, list[tuple[str, int]]]:
    if request.param == "postgres":
        url = pg_database_factory()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('big') / 'source.db'}"
    generate(url, recreate=True, apps=[IOS], start=DAY, days=1, rows_per_day=ROWS, seed=29, tables=["events"])
    src = Source(request.param, url)
    return src, place_hostile_values(src)


def run_export(src: Source, client: Any, **dest_changes: Any) -> exporter.ExportResult:
    dest = validate_destination(DESTINATION | dest_changes, S3_EXPORT, origin="test")
    conn = src.connect()
    try:
        return exporter.export_table(
            integration=S3_EXPORT, spec=SPEC, dest=dest, window=WINDOW, dialect=src.dialect,
            connection=conn, client=client, run_id="big-hostile",
        )  # fmt: skip
    finally:
        conn.close()


def expected(src: Source) -> bytes:
    loaded = ref.load_source(src.url if src.dialect == "postgres" else src.url.removeprefix("sqlite:///"))
    return ref.expected_events(
        loaded, app_id=IOS, start=WINDOW.start, end=WINDOW.end, event_types=set(S3_EXPORT.all_event_types)
    )


def test_hostile_bytes_on_every_boundary_export_exactly(big_day, seaweedfs, s3) -> None:
    src, placed = big_day
    assert len([p for p in placed if p[0] == "source"]) >= 30 and len([p for p in placed if p[0] == "file"]) >= 3
    result = run_export(src, seaweedfs.client_for(EXPORTER))
    stored = s3.get_object(Bucket="exports", Key=result.key)
    body = stored["Body"].read()
    assert body == expected(src)
    assert stored["ETag"].strip('"').endswith(f"-{-(-len(body) // DEFAULT_PART_SIZE)}"), "not a multipart upload"
    manifest = json.loads(s3.get_object(Bucket="exports", Key=result.manifest_key)["Body"].read())
    assert manifest["bytes"] == len(body) == result.bytes
    assert manifest["rows"] == body.count(b"\x02") == result.rows
    assert manifest["sha256"] == result.sha256 == hashlib.sha256(body).hexdigest()


def test_the_same_day_gzipped_decompresses_to_the_same_bytes(big_day, seaweedfs, s3) -> None:
    src, _ = big_day
    result = run_export(src, seaweedfs.client_for(EXPORTER), gzip=True)
    body = s3.get_object(Bucket="exports", Key=result.key)["Body"].read()
    assert result.key.endswith(".csv.gz")
    assert gzip.decompress(body) == expected(src)
    assert result.sha256 == hashlib.sha256(body).hexdigest() and result.bytes == len(body)


def test_the_same_day_as_parquet_holds_the_same_values_across_row_groups(big_day, seaweedfs, s3) -> None:
    """The hostile day as typed Parquet: read back by DuckDB, cell by cell the reference CSV's values
    (tests/parquet_check.py), over several row groups and multipart parts; exported again, the same bytes."""
    src, _ = big_day
    client = seaweedfs.client_for(EXPORTER)
    result = run_export(src, client, format="parquet")
    body = s3.get_object(Bucket="exports", Key=result.key)["Body"].read()
    assert result.key.endswith(".parquet") and result.row_groups >= 3
    columns = [(c.name, c.parquet_type) for c in SPEC.output_columns(with_attributes=False)]
    assert assert_same_values(body, expected(src), columns, where=result.key) == result.rows
    assert result.sha256 == hashlib.sha256(body).hexdigest() and result.bytes == len(body)
    again = run_export(src, client, format="parquet")
    assert s3.get_object(Bucket="exports", Key=again.key)["Body"].read() == body

"""Exactness at the source parse's block boundaries, differentially against Python's ``csv``.

The exporter parses the source's intermediate CSV with Arrow in blocks (512 KiB in production).
Arrow's reader has lost bytes at block boundaries (apache/arrow issue 51368: the LF of a quoted
CRLF whose CR ends a block), so these tests put hostile values on every boundary: rows of CR,
LF, CRLF, lone CRs at a value's end, doubled quotes, commas, multi-byte UTF-8, empty and NULL
values and values longer than a block, parsed through the real parse-and-encode path
(``open_chunks`` -> ``shape`` -> ``encode_rows``) from streams whose reads end at chosen offsets,
and compared byte for byte with what Python's ``csv`` module makes of the same stream.

Each test runs against whatever pyarrow is installed, so they stay meaningful once a fixed
pyarrow is pinned.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from subscription_exports import parsing
from subscription_exports.parsing import (
    CHUNK_BYTES,
    READ_AHEAD_BLOCKS,
    ByteCounts,
    ChunkValues,
    ParseAudit,
    ParseIntegrityError,
    RowAlignedReader,
    arrow_reader,
    open_chunks,
    open_parsed_chunks,
)
from subscription_exports.tables import Column, Kind, TableSpec
from subscription_exports.transform import (
    CSV_SPECIALS,
    ShapeOptions,
    encode_header,
    encode_rows,
    encode_shaped,
    grouped_parsed,
    output_quoting,
    shape,
    shape_columns,
    source_columns,
)

CRLF = "\r\n"
# Text columns are passed through as stored (quoted when needed); the JSON column is normalised per
# row: both are the per-row quoting passes the exporter has.
SPEC = TableSpec(
    name="hostile",
    columns=(
        Column("id", Kind.INTEGER, ""),
        Column("first", Kind.TEXT, ""),
        Column("doc", Kind.JSON, ""),
        Column("last", Kind.TEXT, ""),
    ),
    window_column="id",
)
COLUMNS = source_columns(SPEC)
TOKENS = ["\r\n", "\r", "\n", '"', '""', ",", "a", "Z", " ", "=", "é", "€", "😀", "\u2028"]
HOSTILE_TEXT = st.lists(st.sampled_from(TOKENS), max_size=12).map("".join)
VALUE = st.none() | st.just("") | HOSTILE_TEXT | st.tuples(HOSTILE_TEXT, st.integers(1, 300)).map(lambda t: t[0] * t[1])


def intermediate(rows: Sequence[Sequence[str | None]], dialect: str) -> bytes:
    """The stream the source stage produces: PostgreSQL's COPY CSV (LF, NULL unquoted empty, '' as
    ""), or the SQLite dump (Python's csv writer with CRLF)."""
    if dialect == "sqlite":
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator=CRLF)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        return buf.getvalue().encode("utf-8")

    def field(value: str | None) -> str:
        if value is None:
            return ""
        if value == "" or any(ch in value for ch in ',"\r\n'):
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [",".join(COLUMNS)] + [",".join(field(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def json_doc(text: str | None, pretty: bool) -> str | None:
    # Pretty-printed JSON holds raw LFs between its tokens: more line ends inside a quoted value.
    return None if text is None else json.dumps({"v": text, "k": [1, text]}, indent=1 if pretty else None)


def expected_output(stream: bytes) -> bytes:
    """The obviously correct result: Python's csv parses the stream, the same rendering per column
    (JSON compact with sorted keys, text as is), Python's csv writes it with CRLF."""
    csv.field_size_limit(1 << 30)
    records = list(csv.reader(io.StringIO(stream.decode("utf-8"), newline="")))
    assert records[0] == COLUMNS
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=CRLF)
    writer.writerow(SPEC.column_names)
    for row_id, first, doc, last in records[1:]:
        normal = json.dumps(json.loads(doc), ensure_ascii=False, sort_keys=True, separators=(",", ":")) if doc else ""
        writer.writerow([row_id, first, normal, last])
    return out.getvalue().encode("utf-8")


class CutStream(io.RawIOBase):
    """A source stream whose reads end exactly at the given offsets (as a pipe's short reads do),
    then at whatever size is asked for."""

    def __init__(self, data: bytes, cuts: Sequence[int]) -> None:
        self._data, self._pos = data, 0
        self._cuts = sorted(set(c for c in cuts if 0 < c < len(data)))

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else self._pos + size
        for cut in self._cuts:
            if cut > self._pos:
                end = min(end, cut)
                break
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk


def export_bytes(stream: io.RawIOBase, block_size: int) -> bytes:
    """The real parse-and-encode path of an export."""
    out = [encode_header(SPEC.header(with_attributes=False))]
    for batch in open_chunks(stream, COLUMNS, block_size=block_size):
        out.append(encode_rows(shape(batch, SPEC, ShapeOptions())))
    return b"".join(out)


def export_bytes_without_step(stream: io.RawIOBase, block_size: int) -> bytes:
    """The path of an export without a step of its own: groups of chunks, shaped columns encoded
    scanning for values to quote only the columns whose source values hold a comma, quote, CR or LF
    somewhere in the group (the audit's flags)."""
    out = [encode_header(SPEC.header(with_attributes=False))]
    options = ShapeOptions()
    for group, special in grouped_parsed(open_parsed_chunks(stream, COLUMNS, block_size=block_size), 2 * block_size):
        quoting = output_quoting(SPEC, options, special)
        out.extend(encode_shaped(shape_columns(group, SPEC, options), quoting=quoting))
    return b"".join(bytes(buffer) for buffer in out)


ROWS = st.lists(st.tuples(VALUE, VALUE, VALUE, st.booleans()), min_size=1, max_size=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    rows=ROWS,
    dialect=st.sampled_from(["postgres", "sqlite"]),
    block_size=st.sampled_from([1, 2, 3, 7, 16, 64, 255, 256, 1024]),
    cuts=st.lists(st.integers(1, 20_000), max_size=30),
)
def test_every_block_boundary_gives_the_bytes_pythons_csv_gives(rows, dialect, block_size, cuts) -> None:
    source_rows = [(str(i), first, json_doc(doc, pretty), last) for i, (first, doc, last, pretty) in enumerate(rows)]
    stream = intermediate(source_rows, dialect)
    expected = expected_output(stream)
    assert export_bytes(CutStream(stream, cuts), block_size) == expected
    assert export_bytes_without_step(CutStream(stream, cuts), block_size) == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=ROWS, dialect=st.sampled_from(["postgres", "sqlite"]), block_size=st.sampled_from([1, 16, 64, 256]))
# Each of the four alone in a chunk (one row per chunk at block size 1): the one byte must flag its column.
@example(rows=[("a\rb", None, "c", False), ("d", None, "e", False)], dialect="postgres", block_size=1)
@example(rows=[("a", None, "b\nc", False), ("d", None, "e", False)], dialect="postgres", block_size=1)
@example(rows=[("a", None, 'b"c', False), ("d", None, "e", False)], dialect="postgres", block_size=1)
@example(rows=[("a,b", None, "c", False), ("d", None, "e", False)], dialect="postgres", block_size=1)
def test_a_column_is_flagged_exactly_when_one_of_its_values_holds_a_comma_quote_cr_or_lf(
    rows, dialect, block_size
) -> None:
    # The flags let the encoder skip scanning columns for values to quote: a wrong False would write
    # a comma, quote or line end unquoted. Checked against the values themselves, column by column.
    source_rows = [(str(i), first, json_doc(doc, pretty), last) for i, (first, doc, last, pretty) in enumerate(rows)]
    plain_seen, alone = set(), ChunkValues()
    for chunk in open_parsed_chunks(io.BytesIO(intermediate(source_rows, dialect)), COLUMNS, block_size=block_size):
        holds = tuple(
            any(char.decode() in value for value in column.to_pylist() if value is not None for char in CSV_SPECIALS)
            for column in chunk.batch.columns
        )
        assert chunk.special == holds
        assert chunk.plain is not any(holds)
        plain_seen.add(chunk.plain)
        # The same flags without the audit's counts (how a parse without the fence finds them).
        alone.load(chunk.batch)
        assert alone.special(chunk.batch) == holds
    assert plain_seen  # at least one chunk


def test_plain_and_hostile_chunks_both_occur_and_encode_alike() -> None:
    # Blocks of plain rows between hostile ones: both kinds of group, in one stream, give Python's bytes.
    rows = [(str(i), "plain text é", None, "x") for i in range(40)]
    rows[20] = ("20", "a,b", json_doc('q"', True), "c\r\nd")
    stream = intermediate(rows, "postgres")
    chunks = list(open_parsed_chunks(io.BytesIO(stream), COLUMNS, block_size=64))
    assert {chunk.plain for chunk in chunks} == {True, False}
    assert export_bytes_without_step(io.BytesIO(stream), 64) == expected_output(stream)


def hostile_stream(dialect: str) -> bytes:
    rows = [
        ("0", "a\r\nb", json_doc("x\r\ny", True), "ends in CR\r"),
        ("1", '"quoted"', None, ""),
        ("2", "😀" * 3 + "\r", json_doc('q"q', False), "€,\n"),
        ("3", None, json_doc("", True), "\r\n\r\n"),
        ("4", "long " + "z\r\n" * 40, None, "é"),
    ]
    return intermediate(rows, dialect)


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
@pytest.mark.parametrize("block_size", [4, 64, 1 << 20])
def test_a_read_ending_at_each_offset_changes_nothing(dialect: str, block_size: int) -> None:
    # Every byte offset of a hostile stream is, in turn, the end of a read: the CR of each CRLF,
    # each half of a doubled quote, each byte of a 4-byte character gets to be a boundary.
    stream = hostile_stream(dialect)
    expected = expected_output(stream)
    for offset in range(1, len(stream)):
        assert export_bytes(CutStream(stream, [offset]), block_size) == expected, f"read ending at byte {offset}"


def test_the_bug_behind_this_fence_is_caught_when_the_parser_sees_it() -> None:
    """Without the row alignment, Arrow may lose the LF of a CRLF cut by a block boundary
    (apache/arrow#51368, pyarrow 26.0.1). Whatever the installed pyarrow does with it, the result is
    either exact or refused by the audit: never a silently altered value."""
    prefix, value = b'id,first,doc,last\n0,"', b"y" * 200 + b'\r\nz"'
    pad = 255 - len(prefix) - 200  # put the CR of the CRLF at byte 255, the last of a 256-byte block
    data = prefix + b"x" * pad + value + b",,\n1,ok,,\n"
    assert data[255:256] == b"\r"

    class PassThrough(io.RawIOBase):
        def __init__(self) -> None:
            self._inner, self.counts = io.BytesIO(data), ByteCounts()

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            chunk = self._inner.read(size)
            self.counts.add(chunk)
            return chunk

    stream = PassThrough()
    reader = arrow_reader(stream, COLUMNS, block_size=256)  # the exporter's reader, without the alignment
    audit = ParseAudit(stream, COLUMNS)
    batches = list(reader)
    for batch in batches:
        audit.observe(batch)
    parsed = pa.Table.from_batches(batches).column("first")[0].as_py()
    if parsed == (b"x" * pad + value[:-1]).decode():
        audit.check()  # a fixed Arrow: exact, and the audit agrees
    else:
        assert parsed.endswith("y\rz"), parsed[-5:]  # the known corruption
        with pytest.raises(ParseIntegrityError, match="LF outside values"):
            audit.check()
    # The exporter's path never meets it.
    exported = pa.Table.from_batches(list(open_chunks(io.BytesIO(data), COLUMNS, block_size=256)))
    assert exported.column("first")[0].as_py().endswith("y\r\nz")


class Tampered(io.RawIOBase):
    """Counts the true stream but lets the parser read an altered one: a parser that changes bytes."""

    def __init__(self, true: bytes, seen: bytes) -> None:
        self._seen, self.counts = io.BytesIO(seen), ByteCounts()
        self.counts.add(true)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._seen.read(size)


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        ((b"a\r\nb", b"a\rb"), "LF outside values"),  # the upstream bug's symptom
        ((b"a\r\nb", b"a\nb"), "CR outside values"),  # a lost CR
        ((b"long z", b"long "), "bytes read but"),  # a lost byte
        ((b"\xc3\xa9", b"e"), "bytes read but"),  # a multi-byte character narrowed
    ],
    ids=["crlf-to-cr", "crlf-to-lf", "byte-lost", "utf8-narrowed"],
)
def test_the_audit_refuses_values_that_do_not_account_for_the_stream(change, cause) -> None:
    true = hostile_stream("postgres")
    old, new = change
    assert old in true
    seen = true.replace(old, new, 1)
    stream = Tampered(true, seen)
    reader = arrow_reader(stream, COLUMNS, block_size=CHUNK_BYTES)
    audit = ParseAudit(stream, COLUMNS)
    for batch in reader:
        audit.observe(batch)
    with pytest.raises(ParseIntegrityError, match=cause) as failure:
        audit.check()
    assert "\n" not in str(failure.value)


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_the_audit_passes_exact_streams(dialect: str) -> None:
    stream = hostile_stream(dialect)
    counted = Tampered(stream, stream)
    audit = ParseAudit(counted, COLUMNS)
    for batch in arrow_reader(counted, COLUMNS, block_size=CHUNK_BYTES):
        audit.observe(batch)
    audit.check()


def test_a_row_longer_than_many_blocks_is_read_whole() -> None:
    # Arrow alone fails on a row that straddles more than two blocks; the exporter's reads are whole rows.
    big = "😀\r\n" * 100_000  # 600,000 bytes in one value
    stream = intermediate([("0", big, None, "x"), ("1", "y", None, big)], "postgres")
    assert export_bytes(CutStream(stream, range(1, len(stream), 4093)), 1024) == expected_output(stream)


def test_reads_never_end_inside_a_row() -> None:
    stream = hostile_stream("sqlite")
    reader = RowAlignedReader(CutStream(stream, range(1, len(stream))))
    pieces = iter(lambda: reader.read(5), b"")
    ends = []
    total = b""
    for piece in pieces:
        total += piece
        ends.append(len(total))
    assert total == stream
    rows = list(csv.reader(io.StringIO(stream.decode(), newline="")))
    row_ends = {len(intermediate([tuple(r) for r in rows[1:k]], "sqlite")) for k in range(1, len(rows) + 1)}
    assert set(ends) <= row_ends and len(stream) in ends


class RecordedReader(RowAlignedReader):
    """The exporter's reader, kept for inspection once the parse is over."""

    made: list[RecordedReader] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        RecordedReader.made.append(self)


@pytest.mark.parametrize(
    ("bounded", "block_size"),
    [(True, 1024), (True, 1), (True, 16), (True, 300), (False, 1024)],
    ids=["bounded", "bounded-1-byte-blocks", "bounded-16-byte-blocks", "bounded-row-sized-blocks", "arrow-alone"],
)
def test_arrow_reads_at_most_a_few_blocks_ahead_of_the_consumer(monkeypatch, bounded: bool, block_size: int) -> None:
    # Memory: Arrow's reader queues up to 32 blocks read ahead (16 MiB at the exporter's 512 KiB).
    # The exporter lets it run READ_AHEAD_BLOCKS ahead, and never waits out the timeout doing so:
    # not with blocks smaller than a row either, where the first read holds the header alone.
    RecordedReader.made.clear()
    monkeypatch.setattr(parsing, "RowAlignedReader", RecordedReader)
    if not bounded:
        monkeypatch.setattr(parsing, "READ_AHEAD_BLOCKS", None)
    rows = [(str(i), "v" * 200, json_doc(f"d{i}", i % 3 == 0), "w") for i in range(2000 if block_size >= 300 else 300)]
    stream = intermediate(rows, "postgres")
    out = [encode_header(SPEC.header(with_attributes=False))]
    for batch in open_chunks(io.BytesIO(stream), COLUMNS, block_size=block_size):
        time.sleep(0.002)  # a consumer slower than the parse, as shaping and uploading are
        out.append(encode_rows(shape(batch, SPEC, ShapeOptions())))
    assert b"".join(out) == expected_output(stream)
    (reader,) = RecordedReader.made
    assert reader.stalls == 0
    if bounded:
        assert reader.most_ahead <= READ_AHEAD_BLOCKS
    else:  # what the bound prevents
        assert reader.most_ahead > 3 * READ_AHEAD_BLOCKS


@pytest.mark.parametrize(
    ("stream", "one_row"),
    [
        (b"a,b\n", True),
        (b"a,b\r\n", True),
        (b'"a\nb",c\n', True),  # the LF inside quotes does not end the row
        (b"a,b\n1,2\n", False),
        (b'"a\nb",c\n1,"x\ny"\n', False),
        (b"", False),
    ],
)
def test_a_first_read_of_the_header_alone_is_not_a_block_ahead(stream: bytes, one_row: bool) -> None:
    # Arrow makes no batch of it, so counting it would leave one block less of room for good.
    reader = RowAlignedReader(io.BytesIO(stream), max_ahead=2)
    assert reader.read(max(len(stream), 1)) == stream
    assert reader._ahead == (0 if one_row else 1)


def test_a_consumer_that_stops_early_leaves_no_read_waiting(monkeypatch) -> None:
    RecordedReader.made.clear()
    monkeypatch.setattr(parsing, "RowAlignedReader", RecordedReader)
    monkeypatch.setattr(parsing, "READ_AHEAD_WAIT", 60.0)
    stream = intermediate([(str(i), "v" * 200, None, "w") for i in range(2000)], "postgres")
    chunks = open_chunks(io.BytesIO(stream), COLUMNS, block_size=1024)
    next(chunks)
    started = time.monotonic()
    chunks.close()  # as when an upload fails mid-export
    (reader,) = RecordedReader.made
    # Once closed, no read runs in Arrow's thread (one still inside Python when the interpreter shuts
    # down aborts the process), and any later read ends the stream at once, without waiting.
    assert reader._reading == 0
    for _ in range(2 * READ_AHEAD_BLOCKS):  # more reads than the bound allows: none waits
        assert reader.read(1024) == b""
    assert reader.stalls == 0 and time.monotonic() - started < 30


def test_a_failed_export_exits_with_its_one_line_not_a_crash() -> None:
    # The export gives up mid-stream (its parse closed) and the process exits, as a task whose upload
    # failed does. Arrow's reader thread, left reading, aborted such processes at shutdown (in CI:
    # "Fatal Python error: PyGILState_Release"; here every time before the fix).
    plugins = str(Path(parsing.__file__).resolve().parents[1])
    code = (
        "import io, sys\n"
        f"sys.path.insert(0, {plugins!r})\n"
        "from subscription_exports import parsing\n"
        "data = b'a,b\\n' + b''.join(b'%d,%s\\n' % (i, b'v' * 300) for i in range(200_000))\n"
        "for attempt in range(20):\n"
        "    chunks = parsing.open_chunks(io.BytesIO(data), ['a', 'b'], block_size=4096)\n"
        "    next(chunks)\n"
        "    chunks.close()\n"
        "print('done')\n"
        "raise SystemExit('export failed: one line')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.stdout.strip() == "done"
    assert done.returncode == 1 and done.stderr.strip() == "export failed: one line", done.stderr[-3000:]

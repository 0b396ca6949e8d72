"""Typed Parquet files (``format: parquet``): the shaped text, converted to each column's declared type,
written in row groups as the chunks arrive.

The destination's file is shaped exactly as for CSV (``transform.shape_columns``, or the frame a
destination's own step returns): text. Only then is each column converted to its Parquet type
(``tables.Column.parquet_type``) by Arrow's cast, which is exact or fails: a decimal with more places
than the column holds, text that is not a number, a timestamp without an offset or finer than a
microsecond are refused (``ConversionError``: one line naming destination, table, column, row and
value), never rounded. An empty value is NULL, as in the CSV (``convert``).

Row groups: the converted columns are held until they make a row group (``ROW_GROUP_ROWS`` rows or
``ROW_GROUP_BYTES`` of Arrow data, whichever comes first), which is then written to the sink at once
(Arrow's writer encodes and compresses its pages and hands the bytes on): memory is bounded by one row
group, not by the day. Where a row group ends depends on the rows only, never on how the source
stream was chunked, and every column of a row group is laid end to end before it is written (Arrow
cuts pages at its input's chunk boundaries): the same rows give the same bytes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from subscription_exports.custom_transform import TransformError
from subscription_exports.tables import DATE32, INT64, STRING, TIMESTAMP_UTC, Column

# A row group ends after this many rows, or earlier where its Arrow data would pass ROW_GROUP_BYTES,
# which bounds the memory an export holds for it (a row group costs about twice its size at the peak:
# the queued chunks and the column being laid out and encoded). 4 MiB is about 10,000 `events` rows:
# measured in-process over a 60,000-row day, 16 MiB row groups peaked 35 MB above the CSV export, 8 MiB
# 20 MB, 4 MiB 11 MB, for 18.4%, 20.0% and 21.2% of the CSV's bytes (zstd); the task's bar is 280 MB.
ROW_GROUP_ROWS = 131_072
ROW_GROUP_BYTES = 4 << 20
COMPRESSIONS = ("zstd", "snappy", "gzip", "none")
VALUE_SHOWN = 60  # characters of a value an error line quotes
# Writer settings, stated rather than left to the library's defaults: format 2.6 (nanosecond-free
# logical types every listed reader knows), dictionary pages, statistics (readers skip row groups).
WRITER_OPTIONS: dict[str, Any] = {"version": "2.6", "use_dictionary": True, "write_statistics": True}

_DECIMAL = re.compile(r"decimal128\((\d+), (\d+)\)")
_FIXED_TYPES = {STRING: pa.string(), TIMESTAMP_UTC: pa.timestamp("us", "UTC"), DATE32: pa.date32(), INT64: pa.int64()}


class ConversionError(TransformError):
    """A value of the shaped file cannot be its column's Parquet type exactly.

    One line naming destination, table, column, row and value; nothing is written, and no retry
    (the same rows give the same values)."""


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type a declaration names (``tables.PARQUET_TYPES``): ``str(arrow_type(n)) == n``."""
    if name in _FIXED_TYPES:
        return _FIXED_TYPES[name]
    match = _DECIMAL.fullmatch(name)
    if match is None:
        raise ValueError(f"unknown Parquet column type {name!r}")
    return pa.decimal128(int(match[1]), int(match[2]))


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    """The file's schema: each column's declared type, nullable (a NULL is an empty CSV field)."""
    return pa.schema([pa.field(column.name, arrow_type(column.parquet_type)) for column in columns])


def describe_schema(schema: pa.Schema) -> list[dict[str, str]]:
    """The schema as the manifest lists it: name and Arrow type of each column, in order."""
    return [{"name": field.name, "type": str(field.type)} for field in schema]


def convert(values: pa.ChunkedArray, type_: pa.DataType) -> pa.ChunkedArray:
    """Text -> ``type_``, exactly (Arrow's safe cast), or ``pyarrow.ArrowInvalid``.

    An empty value is NULL, in every column: the CSV writes both as an empty field, so the file holds
    what the CSV holds, whichever the source (PostgreSQL's COPY tells an empty string from NULL, the
    SQLite dump does not). For typed columns the cast is tried first: most hold no empty value, and
    then one kernel suffices.
    """
    if type_ == pa.string():
        empty = pc.equal(values, "")
        return pc.if_else(empty, pa.scalar(None, pa.string()), values) if pc.any(empty).as_py() else values
    try:
        return pc.cast(values, type_)
    except pa.ArrowInvalid:
        empty = pc.equal(values, "")
        if not pc.any(empty).as_py():
            raise
        return pc.cast(pc.if_else(empty, pa.scalar(None, pa.string()), values), type_)


def first_invalid(values: pa.ChunkedArray, type_: pa.DataType) -> tuple[int, str] | None:
    """(index, value) of the first value ``convert`` refuses (the error path only: value by value)."""
    for index, value in enumerate(values.to_pylist()):
        if value is None or value == "":
            continue
        try:
            pc.cast(pa.array([value], pa.string()), type_)
        except pa.ArrowInvalid:
            return index, value
    return None


def expected_form(type_: pa.DataType) -> str:
    """What a value of ``type_`` must look like, for the error line."""
    if pa.types.is_decimal(type_):
        return f"a decimal of at most {type_.precision - type_.scale} integer digits and {type_.scale} places ({type_})"
    if pa.types.is_timestamp(type_):
        return f"an ISO 8601 timestamp with an offset, to the microsecond ({type_})"
    if pa.types.is_date(type_):
        return f"a date YYYY-MM-DD ({type_})"
    return f"a whole number within 64 bits ({type_})"


def shorten(value: str) -> str:
    """A value as an error line quotes it: on one line (repr), at most VALUE_SHOWN characters of it."""
    return repr(value[:VALUE_SHOWN]) + ("..." if len(value) > VALUE_SHOWN else "")


def convert_columns(
    text: Sequence[pa.ChunkedArray], schema: pa.Schema, *, first_row: int, destination: str, table: str
) -> list[pa.ChunkedArray]:
    """The file's text columns (in ``schema``'s order) as their types; ``first_row``: the file's row
    number (1-based) of their first value, for the error line."""
    typed = []
    for values, field in zip(text, schema, strict=True):
        try:
            typed.append(convert(values, field.type))
        except pa.ArrowInvalid as exc:
            found = first_invalid(values, field.type)
            where = f"destination '{destination}': table '{table}': column '{field.name}'"
            if found is None:  # Arrow refused the column, yet no single value: say what it said
                raise ConversionError(f"{where}: {' '.join(str(exc).split())[:300]}") from None
            index, value = found
            raise ConversionError(
                f"{where}: row {first_row + index}: value {shorten(value)} is not {expected_form(field.type)}"
            ) from None
    return typed


class _SinkFile:
    """The ``ObjectSink`` as the writable file Arrow's writer wants; after ``discard()`` writes go nowhere
    (an aborted upload must not be reopened by the footer a garbage-collected writer writes)."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.closed = False
        self._discarded = False
        self._position = 0

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if not self._discarded:
            self.sink.write(data)
        self._position += size
        return size

    def tell(self) -> int:
        return self._position

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def discard(self) -> None:
        self._discarded = True


def row_bytes(columns: Sequence[pa.ChunkedArray]) -> np.ndarray:
    """Per row, the bytes its values take in Arrow (values and offsets; validity bits left out)."""
    rows = len(columns[0])
    sizes = np.zeros(rows, dtype=np.int64)
    for values in columns:
        width = values.type.byte_width if values.type != pa.string() else 0
        if width:
            sizes += width
            continue
        start = 0
        for chunk in values.chunks:
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=len(chunk) + 1, offset=chunk.offset * 4)
            sizes[start : start + len(chunk)] += np.diff(offsets) + 4
            start += len(chunk)
    return sizes


class ParquetFile:
    """One Parquet file streamed to an ``ObjectSink``: ``write`` the file's text columns group by
    group, ``close`` to write the last row group and the footer (``abort`` on failure)."""

    def __init__(
        self,
        sink: Any,
        columns: Sequence[Column],
        *,
        compression: str,
        destination: str,
        table: str,
        row_group_rows: int = ROW_GROUP_ROWS,
        row_group_bytes: int = ROW_GROUP_BYTES,
    ) -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, not {compression!r}")
        self.schema = arrow_schema(columns)
        self.destination, self.table = destination, table
        self.row_group_rows, self.row_group_bytes = row_group_rows, row_group_bytes
        self._file = _SinkFile(sink)
        self._writer = pq.ParquetWriter(
            self._file, self.schema, compression="NONE" if compression == "none" else compression, **WRITER_OPTIONS
        )
        self._pending: list[list[pa.Array]] = [[] for _ in self.schema]
        self._pending_rows = 0
        self._pending_bytes = 0
        self.rows = 0  # converted so far
        self.row_groups = 0  # written so far

    def write(self, text: Sequence[pa.ChunkedArray]) -> None:
        """Convert one group of the file's text columns (``convert_columns``) and queue its rows;
        every row group they complete is written at once."""
        if not text or not len(text[0]):
            return
        typed = convert_columns(
            text, self.schema, first_row=self.rows + 1, destination=self.destination, table=self.table
        )
        self.rows += len(typed[0])
        for pending, values in zip(self._pending, typed, strict=True):
            pending.extend(chunk for chunk in values.chunks if len(chunk))
        self._pending_rows += len(typed[0])
        self._pending_bytes += sum(values.nbytes for values in typed)
        while self._pending_rows >= self.row_group_rows or self._pending_bytes >= self.row_group_bytes:
            self._write_row_group()

    def _write_row_group(self) -> None:
        columns: list[pa.ChunkedArray | None] = [
            pa.chunked_array(chunks, field.type) for chunks, field in zip(self._pending, self.schema, strict=True)
        ]
        # The row group: the longest run of the queued rows within both bounds (at least one row).
        # Decided per row, so the same rows make the same row groups however they were chunked.
        sizes = np.cumsum(row_bytes([values for values in columns if values is not None]))
        within_bytes = int(np.searchsorted(sizes, self.row_group_bytes, side="right"))
        rows = max(1, min(self.row_group_rows, within_bytes, self._pending_rows))
        arrays = []
        for i, values in enumerate(columns):
            assert values is not None
            head = values.slice(0, rows)
            arrays.append(pa.concat_arrays(head.chunks) if head.num_chunks else pa.array([], values.type))
            self._pending[i] = [chunk for chunk in values.slice(rows).chunks if len(chunk)]
            columns[i] = head = values = None  # the queued chunks go as each column is laid out
        self._pending_rows -= rows
        self._pending_bytes = sum(sum(chunk.nbytes for chunk in pending) for pending in self._pending)
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema), row_group_size=rows)
        self.row_groups += 1

    def close(self) -> None:
        """Write the queued rows (as many row groups as the bounds make) and the footer."""
        while self._pending_rows:
            self._write_row_group()
        self._writer.close()

    def abort(self) -> None:
        """Drop what is queued; nothing more reaches the sink."""
        self._file.discard()
        self._pending = [[] for _ in self.schema]
        self._pending_rows = 0
        with contextlib.suppress(Exception):  # the upload is being aborted: the writer's failure adds nothing
            self._writer.close()

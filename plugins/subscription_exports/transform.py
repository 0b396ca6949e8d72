"""Shape source chunks into the documented CSV: pandas on pyarrow-backed columns.

Per group of parsed chunks (the exporter's loop): ``parsing.open_chunks`` parses the source CSV
with pyarrow, every column as text (so no value is ever rounded through a float); ``shape`` wraps
each column as a ``pd.ArrowDtype(pa.string())`` array sharing its Arrow buffers (no copy),
renders each column by its kind in the table declaration, one function per kind
(``render_timestamp``, ``render_decimal``, ``render_event_type``, ``render_json``,
``render_ratio``; integers, dates and text pass as stored), and returns the chunk as a
``pandas.DataFrame`` of those columns; a destination's own ``transform`` may then rewrite the
frame; ``encode_rows`` writes it as RFC 4180 CSV.

Where pandas has no vectorised form the code is not pandas, on purpose:

* the CSV encoding (``quote_minimal``, ``encode_rows``) is pyarrow compute over the whole chunk:
  ``DataFrame.to_csv`` writes through Python's ``csv`` module value by value, many times slower;
* JSON normalisation (``normalize_json``) and the derived ratios (``ratio_text``) need a parser and
  exact ``Decimal`` arithmetic per value; pandas calls them through ``Series.map``, and the
  exact-Decimal JSON writer (``_dump_json``) is plain Python.

pandas' string methods on ``ArrowDtype`` columns run the same pyarrow kernels the encoder uses,
so the shaping costs little over the kernels themselves; docs/development.md has the measured cost.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from subscription_exports.parsing import CSV_SPECIALS, ParsedChunk, special_bytes, value_buffer, value_bytes
from subscription_exports.tables import ATTRIBUTES, Kind, TableSpec

LINE_END = "\r\n"  # RFC 4180
UTC_SUFFIXES = ("+00", "+00:00", "Z")  # UTC offsets as PostgreSQL and ISO 8601 write them
# Parsed chunks are shaped in groups of about this many bytes: pandas' per-call overhead is paid per
# group, not per 512 KiB chunk (the group's columns stay chunked, nothing is copied).
SHAPE_BYTES = 1 << 20
SIX_PLACES = Decimal("0.000001")

TEXT = pd.ArrowDtype(pa.string())
NAIVE_UTC = pa.timestamp("us")


@dataclass(frozen=True)
class ShapeOptions:
    """Per-destination settings that change the file's content."""

    with_attributes: bool = False
    rename_event_types: Mapping[str, str] = field(default_factory=dict)


def source_columns(spec: TableSpec) -> list[str]:
    """Columns the table's SQL must return, in order: the documented ones minus derived metrics,
    plus ``attributes`` for tables that can send user attributes."""
    names = [c.name for c in spec.columns if c.kind is not Kind.RATIO]
    if spec.supports_attributes:
        names.append(ATTRIBUTES.name)
    return names


def grouped(batches: Iterable[pa.RecordBatch], group_bytes: int = SHAPE_BYTES) -> Iterator[pa.Table]:
    """Consecutive chunks as tables of about ``group_bytes`` each (their columns stay chunked, no copy)."""
    chunks = (ParsedChunk(batch, (True,) * batch.num_columns) for batch in batches)
    for table, _ in grouped_parsed(chunks, group_bytes):
        yield table


def grouped_parsed(
    chunks: Iterable[ParsedChunk], group_bytes: int = SHAPE_BYTES
) -> Iterator[tuple[pa.Table, dict[str, bool]]]:
    """``grouped`` of parsed chunks, each group with, per source column, whether any value of any
    of its chunks holds a comma, quote, CR or LF (``ParsedChunk.special``)."""
    group: list[pa.RecordBatch] = []
    size, special = 0, None
    for chunk in chunks:
        group.append(chunk.batch)
        # The sizes of the buffers it holds: ``nbytes`` walks every string column's offsets to find
        # the bytes referenced (about 0.1 CPU-s per 1M rows); a parsed batch references all of them.
        size += chunk.batch.get_total_buffer_size()
        special = chunk.special if special is None else tuple(map(operator.or_, special, chunk.special))
        if size >= group_bytes:
            yield pa.Table.from_batches(group), dict(zip(group[0].schema.names, special, strict=True))
            group, size, special = [], 0, None
    if group:
        yield pa.Table.from_batches(group), dict(zip(group[0].schema.names, special, strict=True))


# -- column rendering, one function per kind ------------------------------------------------------


def render_timestamp(values: pd.Series) -> pd.Series:
    """'2026-03-07 12:34:56.1+00' (PostgreSQL) or '2026-03-07 12:34:56.100000' (SQLite)
    -> '2026-03-07T12:34:56.100000+00:00'.

    Parsed as a timestamp (``parse_utc``; text in no source form raises ``pyarrow.ArrowInvalid``)
    and cast back to text, which Arrow writes at a fixed width with always 6 fraction digits (many
    times faster than ``strftime``); ``iso_utc`` then puts the 'T' and the offset in place.
    """
    text = pc.cast(parse_utc(values), pa.string())
    rendered = pa.chunked_array([iso_utc(chunk) for chunk in text.chunks], pa.string())
    return pd.Series(pd.arrays.ArrowExtensionArray(rendered), index=values.index, copy=False)


def parse_utc(values: pd.Series) -> pa.ChunkedArray:
    """The values as naive Arrow timestamps (``timestamp[us]``) in UTC.

    PostgreSQL writes every timestamptz with '+00' (the session's time zone is UTC): those are
    parsed with their offset in one kernel, then viewed as naive (a zoned timestamp stores UTC; its
    text cast would look up the zone per value). Any other mix of forms (SQLite's naive text, ISO
    8601's 'Z', '+00:00') has each UTC suffix removed first and is parsed as naive UTC.
    """
    arrow = values.array.__arrow_array__()
    if pc.all(pc.ends_with(arrow, UTC_SUFFIXES[0])).as_py() is not False:  # None: no value at all
        with contextlib.suppress(pa.ArrowInvalid):  # if not, the general path below says what is wrong
            zoned = pc.cast(arrow, pa.timestamp("us", "UTC"))
            return pa.chunked_array([chunk.view(NAIVE_UTC) for chunk in zoned.chunks], NAIVE_UTC)
    naive = values
    for suffix in UTC_SUFFIXES:
        ends = naive.str.endswith(suffix)
        if ends.any():
            naive = naive.str.removesuffix(suffix)
        if ends.all():  # the usual case: one source writes one form (NA is skipped)
            break
    # Arrow's own cast, not pandas' astype: pandas 2.3 falls back to its datetime parser there and raises
    # its ValueError, pandas 3 casts with Arrow (ArrowInvalid, the refusal the callers handle).
    return pc.cast(naive.array.__arrow_array__(), NAIVE_UTC)


TIMESTAMP_WIDTH = len("2026-03-07 12:34:56.100000")  # Arrow's text of a timestamp[us]
ISO_UTC_OFFSET = np.frombuffer(b"+00:00", dtype=np.uint8)
ISO_UTC_WIDTH = TIMESTAMP_WIDTH + len(ISO_UTC_OFFSET)


def string_buffers(text: pa.Array) -> tuple[pa.Buffer | None, np.ndarray, np.ndarray]:
    """A string array's validity bitmap, offsets (from 0) and value bytes, as numpy views.

    A slice is copied first (its own buffers), so the bitmap and the offsets start at its first value.
    """
    if text.offset:
        text = pa.concat_arrays([text])
    validity, offsets_buffer, data = text.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32, count=len(text) + 1)
    values = np.frombuffer(data, dtype=np.uint8, count=int(offsets[-1] - offsets[0]), offset=int(offsets[0]))
    return validity, offsets - offsets[0], values


def iso_utc(text: pa.Array) -> pa.Array:
    """Arrow's text of naive timestamps ('2026-03-07 12:34:56.100000') -> '2026-03-07T12:34:56.100000+00:00'.

    Arrow writes every such timestamp in 26 bytes, so the chunk's bytes are a (values x 26) matrix:
    one strided copy rewrites all of them, where string kernels (slice, replace, concatenate) would
    each pass over the chunk and allocate its result. Raises ValueError if a value is not 26 bytes
    long (the parser takes 4-digit years only, so Arrow's text of a parsed timestamp always is).
    """
    if not len(text):
        return text
    rows, present = len(text), len(text) - text.null_count
    validity, offsets, data = string_buffers(text)
    if np.count_nonzero(np.diff(offsets) == TIMESTAMP_WIDTH) != present or data.size != TIMESTAMP_WIDTH * present:
        raise ValueError(f"timestamp text is not {TIMESTAMP_WIDTH} bytes long: {text.slice(0, 3).to_pylist()}")
    source = data.reshape(present, TIMESTAMP_WIDTH)
    lines = np.empty((present, ISO_UTC_WIDTH), dtype=np.uint8)
    lines[:, :10] = source[:, :10]  # the date
    lines[:, 10] = ord("T")
    lines[:, 11:TIMESTAMP_WIDTH] = source[:, 11:]  # the time, 6 fraction digits
    lines[:, TIMESTAMP_WIDTH:] = ISO_UTC_OFFSET
    shifted = (offsets // TIMESTAMP_WIDTH * ISO_UTC_WIDTH).astype(np.int32)
    return pa.Array.from_buffers(
        pa.string(), rows, [validity, pa.py_buffer(shifted), pa.py_buffer(lines)], text.null_count
    )


def render_decimal(values: pd.Series) -> pd.Series:
    """Exact decimal text with trailing fractional zeros trimmed: '9.9900' -> '9.99', '10.0' -> '10',
    '-0.0000' -> '0'; text without a point ('10': SQLite writes 10.0 so) as it is.

    Two trims (zeros, then a point left last) over the whole column; where every value holds a
    point (``hold_a_point``: PostgreSQL's ``numeric(18,4)`` text), no search for one is needed.
    """
    text = single_chunk(arrow(values))
    trimmed = pc.utf8_rtrim(pc.utf8_rtrim(text, "0"), ".")
    if not hold_a_point(text):
        trimmed = pc.if_else(pc.match_substring(text, "."), trimmed, text)  # a null stays null
    negative_zero = pc.equal(trimmed, "-0")
    if pc.any(negative_zero).as_py():
        trimmed = pc.if_else(negative_zero, "0", trimmed)
    return pd.Series(pd.arrays.ArrowExtensionArray(trimmed), index=values.index, copy=False)


FOUR_PLACES = 5  # '.dddd': numeric(18,4) text ends in a point and four digits


def hold_a_point(text: pa.Array) -> bool:
    """Whether every non-empty value has a point fifth from its end, as PostgreSQL writes
    ``numeric(18,4)`` (False says nothing: the caller then searches each value).

    One comparison per value, at its end (a value's end is its offset), instead of a search
    through each value; a null or empty value is an empty range and needs no point.
    """
    _, offsets, data = string_buffers(text)
    if not data.size:
        return True
    lengths = np.diff(offsets)
    points = data[np.maximum(offsets[1:] - FOUR_PLACES, 0)] == ord(".")
    return bool(((points & (lengths >= FOUR_PLACES)) | (lengths == 0)).all())


def render_event_type(values: pd.Series, renames: Mapping[str, str]) -> pd.Series:
    """Lower-cased, then renamed per destination."""
    lowered = values.str.lower()
    return lowered.replace(dict(renames)) if renames else lowered


def render_json(values: pd.Series) -> pd.Series:
    """Compact JSON with sorted keys and exact numbers (``normalize_json`` per value)."""
    return values.map(normalize_json, na_action="ignore").astype(TEXT)


def render_ratio(numerator: pd.Series, denominator: pd.Series, scale: int) -> pd.Series:
    """``scale * numerator / denominator``, exact (``ratio_text`` per row)."""
    pairs = zip(numerator.to_numpy(object, na_value=None), denominator.to_numpy(object, na_value=None), strict=True)
    return pd.Series([ratio_text(n, d, scale) for n, d in pairs], index=numerator.index, dtype=TEXT)


# Kinds whose text both sources already write as documented: passed through as they are.
AS_STORED = (Kind.TEXT, Kind.INTEGER, Kind.DATE)
RENDERERS: dict[Kind, Callable[[pd.Series], pd.Series]] = {
    Kind.TIMESTAMP: render_timestamp,
    Kind.DECIMAL: render_decimal,
    Kind.JSON: render_json,
}


def shape(chunk: pa.RecordBatch | pa.Table, spec: TableSpec, options: ShapeOptions) -> pd.DataFrame:
    """One source chunk -> the file's columns, in output order, as a DataFrame of text columns.

    The values are not yet quoted for CSV: a destination's ``transform`` sees them as they read.
    Each column is wrapped as it is (``ArrowExtensionArray`` shares the Arrow buffers, no copy).
    """
    columns = shape_columns(chunk, spec, options)
    return pd.DataFrame({name: pd.arrays.ArrowExtensionArray(values) for name, values in columns.items()}, copy=False)


def shape_columns(
    chunk: pa.RecordBatch | pa.Table, spec: TableSpec, options: ShapeOptions
) -> dict[str, pa.ChunkedArray]:
    """``shape`` without the DataFrame: the file's columns in output order, each Arrow ``string``.

    The exporter encodes these directly when a destination has no ``transform`` of its own: a
    DataFrame, and pandas wrappers around columns that pass as stored, cost per group of chunks
    about a tenth of an export's CPU, for nothing.
    """
    source = dict(zip(chunk.column_names, chunk.columns, strict=True))
    if isinstance(chunk, pa.RecordBatch):
        source = {name: pa.chunked_array([values]) for name, values in source.items()}
    kinds = output_kinds(spec, options)
    shaped = {name: source[name] for name, kind in kinds.items() if kind in AS_STORED}
    for kind, render in RENDERERS.items():
        shaped |= render_columns(source, [name for name, k in kinds.items() if k is kind], render)
    for name, ratio in spec.ratios:
        numerator, denominator = series(source[ratio.numerator]), series(source[ratio.denominator])
        shaped[name] = arrow(render_ratio(numerator, denominator, ratio.scale))
    for name in (name for name, kind in kinds.items() if kind is Kind.EVENT_TYPE):
        shaped[name] = arrow(render_event_type(series(source[name]), options.rename_event_types))
    return {name: shaped[name] for name in kinds}


def output_kinds(spec: TableSpec, options: ShapeOptions) -> dict[str, Kind]:
    """The file's columns in order, each with its kind."""
    kinds = {col.name: col.kind for col in spec.columns}
    if options.with_attributes:
        kinds[ATTRIBUTES.name] = ATTRIBUTES.kind
    return kinds


def output_quoting(spec: TableSpec, options: ShapeOptions, special: Mapping[str, bool] | None = None) -> list[bool]:
    """Which of ``shape_columns``' columns may need quoting (``encode_shaped``'s ``quoting``), given
    which source columns hold a comma, quote, CR or LF somewhere in the group (``special``, from the
    parse's audit; None: none does). Only those columns are then scanned for values to quote.

    A column that passes as stored holds its source values; a decimal is its source text, trimmed;
    an event type is its source value lower-cased (no character's lower case is one of the four),
    unless a destination renames it to text that holds one: each may need quoting only if its
    source column may. Timestamps and ratios are written from digits, '-', '.', ':', 'T' and '+'
    only. JSON is written anew: its values are always checked.
    """
    special = special or {}
    renamed_specials = any(
        char in name.encode() for name in options.rename_event_types.values() for char in CSV_SPECIALS
    )
    quoting = []
    for name, kind in output_kinds(spec, options).items():
        if kind in (Kind.TIMESTAMP, Kind.RATIO):
            quoting.append(False)
        elif kind is Kind.JSON:
            quoting.append(True)
        else:  # as stored, decimal, event type
            quoting.append(special.get(name, False) or (kind is Kind.EVENT_TYPE and renamed_specials))
    return quoting


def series(values: pa.ChunkedArray) -> pd.Series:
    """An Arrow column as a pandas Series of ``pd.ArrowDtype``, sharing its buffers."""
    return pd.Series(pd.arrays.ArrowExtensionArray(values), copy=False)


def arrow(values: pd.Series) -> pa.ChunkedArray:
    """A Series of ``pd.ArrowDtype`` as its Arrow column (shared, not copied)."""
    return values.array.__arrow_array__()


def render_columns(
    source: Mapping[str, pa.ChunkedArray], names: list[str], render: Callable[[pd.Series], pd.Series]
) -> dict[str, pa.ChunkedArray]:
    """``render`` over several columns of one kind in one call: stacked end to end (no copy), then
    split back. pandas' cost is per call, so eight decimal columns cost one call, not eight."""
    if not names:
        return {}
    stacked = pa.chunked_array([chunk for name in names for chunk in source[name].chunks], pa.string())
    rendered = arrow(render(series(stacked)))
    rows = len(source[names[0]])
    return {name: rendered.slice(i * rows, rows) for i, name in enumerate(names)}


# -- JSON and ratios: per value, exact -------------------------------------------------------------


def normalize_json(text: str | None) -> str | None:
    """Compact JSON with sorted keys, identical whatever the source's JSON rendering was.

    Numbers are parsed as Decimal and written as plain decimals, so no value passes through a
    binary float (``12345678901234567.89`` stays exact; ``1e2`` becomes ``100``).
    """
    if text is None or text == "":
        return None
    floats_before = _json_floats.seen
    value = _JSON_DECODER.decode(text)
    if value is None:
        return None
    if _json_floats.seen == floats_before:
        # No fractional number: the C encoder writes exactly what ``_dump_json`` would, far faster.
        return _JSON_ENCODER.encode(value)
    return _dump_json(value)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class _FloatCounter(threading.local):
    seen = 0


_json_floats = _FloatCounter()  # per thread, so a concurrent parse never hides this one's fractions


def _parse_fraction(text: str) -> Decimal:
    _json_floats.seen += 1
    return Decimal(text)


_JSON_DECODER = json.JSONDecoder(parse_float=_parse_fraction, parse_constant=_reject_constant)
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _dump_json(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{_dump_json(str(k))}:{_dump_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        text = format(value, "f")
        return "0" if text in {"-0", "-0.0"} else text
    # str, bool, int, None: the standard encoder is exact for these
    return json.dumps(value, ensure_ascii=False)


def ratio_text(num: str | None, den: str | None, scale: int) -> str | None:
    """``scale * num / den`` rounded half-up to 6 places, trailing zeros trimmed; None on 0 or NULL."""
    if num is None or den is None:
        return None
    try:
        d = Decimal(den)
        if d == 0:
            return None
        value = (Decimal(num) * scale / d).quantize(SIX_PLACES, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


# -- CSV encoding: pyarrow compute over the whole chunk ---------------------------------------------

EMPTY, COMMA, QUOTE, CRLF = (pa.scalar(t, pa.string()) for t in ("", ",", '"', LINE_END))


def quote_minimal(values: pa.Array) -> pa.Array:
    """Quote (and double inner quotes of) only values holding a comma, quote, CR or LF."""
    if values.type == pa.string():
        # Most columns of most chunks hold none of the four: a memchr over the chunk's bytes
        # settles that far cheaper than a kernel and its temporary arrays.
        data = value_bytes(values)
        if not any(special in data for special in CSV_SPECIALS):
            return values
    return single_chunk(quote_all(pa.chunked_array([values], values.type)))


def encode_header(names: list[str]) -> bytes:
    return (",".join(names) + LINE_END).encode("utf-8")


def text_array(values: pd.Series) -> pa.ChunkedArray | None:
    """The column as Arrow ``string``, or None when it is not text.

    Text is ``pd.ArrowDtype(pa.string())`` (shared, not copied) or ``large_string``, pandas'
    ``string`` / ``str`` dtypes (either storage, either missing-value marker), or ``object``
    holding only ``str`` and missing values. Every missing value (``None``, ``NaN``, ``pd.NA``,
    ``NaT``) becomes null, i.e. an empty field. Nothing else is converted: a number, date or
    category cast to text here would be written in pandas' or Arrow's rendering (``1.2e+10``,
    ``7`` for ``007``), not as the source wrote it.

    A column of any other dtype with no value at all (every value missing, or no rows) is text too:
    empty fields, since nothing it could say is lost. pandas gives such columns whatever dtype its
    inference lands on: ``Series.map(f, na_action="ignore")`` over a column missing in every row
    returns ``null[pyarrow]``, ``assign(c=np.nan)`` a ``float64`` of NaN.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.ArrowDtype):
        if dtype.pyarrow_dtype not in (pa.string(), pa.large_string()):
            return no_values(values)
        arrow = values.array.__arrow_array__()  # the chunked array itself
    elif isinstance(dtype, pd.StringDtype):
        arrow = pa.array(values.array, type=pa.string())
    elif pd.api.types.is_object_dtype(dtype):
        array = values.to_numpy(dtype=object)
        missing = pd.isna(array)
        if pd.api.types.infer_dtype(array[~missing], skipna=False) not in ("string", "empty"):
            return None
        if missing.any():
            array = array.copy()
            array[missing] = None
        arrow = pa.array(array, type=pa.string())
    else:
        return no_values(values)
    return as_string(arrow if isinstance(arrow, pa.ChunkedArray) else pa.chunked_array([arrow]))


def no_values(values: pd.Series) -> pa.ChunkedArray | None:
    """A column of a non-text dtype as empty fields when it holds no value (None when it holds one)."""
    if len(values) and not values.isna().all():
        return None
    return pa.chunked_array([pa.nulls(len(values), pa.string())])


def as_string(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Arrow text as ``string`` (``large_string`` cast; ``string`` as it is, not copied)."""
    return values if values.type == pa.string() else values.cast(pa.string())


def describe_dtype(values: pd.Series) -> str:
    """The column's dtype as a user reads it: ``double[pyarrow]``, ``int64``, ``object holding int``."""
    if not pd.api.types.is_object_dtype(values.dtype):
        return str(values.dtype)
    present = values[~values.isna()]
    other = next((v for v in present if not isinstance(v, str)), None)
    return f"object holding {type(other).__name__}" if other is not None else "object"


def text_columns(frame: pd.DataFrame) -> list[pa.ChunkedArray]:
    """The frame's columns as Arrow text, without copying pyarrow-backed ones.

    Raises ``TypeError`` naming the column when a column is not text (``text_array``): the
    exporter never casts a column to text, it writes text it was given.
    """
    columns = []
    for name, values in frame.items():
        arrow = text_array(values)
        if arrow is None:
            raise TypeError(f"column '{name}' is {describe_dtype(values)}, not text")
        columns.append(arrow)
    return columns


def encode_rows(frame: pd.DataFrame) -> bytes:
    """The frame's rows as CSV lines: minimal quoting, NULL as an empty field, CRLF."""
    return b"".join(encode_row_buffers(frame))


def encode_row_buffers(frame: pd.DataFrame) -> list[pa.Buffer | bytes]:
    """``encode_rows`` as the Arrow buffers that hold the lines, in order, not copied into one."""
    if frame.empty:
        return []
    return encode_columns(text_columns(frame))


def encode_shaped(
    columns: Mapping[str, pa.ChunkedArray], *, quoting: list[bool] | None = None
) -> list[pa.Buffer | bytes]:
    """``encode_row_buffers`` of ``shape_columns``' result (Arrow ``string`` by construction);
    ``quoting``: ``encode_columns``'."""
    arrays = list(columns.values())
    if not arrays or not len(arrays[0]):
        return []
    return encode_columns([as_string(values) for values in arrays], quoting)


def encode_columns(columns: list[pa.ChunkedArray], quoting: list[bool] | None = None) -> list[pa.Buffer | bytes]:
    """Text columns of equal length (at least one row) as CSV lines, in Arrow buffers, in order.

    Only the columns that hold a comma, quote, CR or LF at all (``columns_to_quote``, or per column
    False where the caller knows that none can: ``output_quoting``) are scanned for values to
    quote. Those values are usually in a few rows: the lines are then joined unquoted and each such
    row is written again by Python's ``csv`` module in its place (``patched_lines``), instead of
    five kernels per column over the whole column; many such rows are quoted column by column.
    The lines' data buffers are the bytes.
    """
    if quoting is None:
        quoting = columns_to_quote(columns)
    columns = list(columns)  # the caller's list stays as it was
    texts = {i: single_chunk(columns[i]) for i, quote in enumerate(quoting) if quote}
    needs = {i: mask for i, text in texts.items() if (mask := values_to_quote(text)).any()}
    rows = np.flatnonzero(np.logical_or.reduce(list(needs.values()))) if needs else np.empty(0, dtype=np.intp)
    if 0 < rows.size <= PATCHED_ROWS_PER_COLUMN * len(needs):
        return patched_lines(columns, join_lines(columns), rows)
    for i, mask in needs.items():
        columns[i] = quote_values(texts[i], mask)
    return [value_buffer(chunk) for chunk in join_lines(columns).chunks]


# Up to this many rows per column to quote, rewriting whole rows (about 40 us each) costs less than
# quoting column by column (five kernel calls, about 130 us per column of a 1 MB group).
PATCHED_ROWS_PER_COLUMN = 3


def join_lines(columns: list[pa.ChunkedArray]) -> pa.ChunkedArray:
    """Each row's values joined by commas and ended by CRLF, as they are (a null is an empty field)."""
    # The line end is joined to the last column, not to whole lines: one pass less over the chunk.
    last = pc.binary_join_element_wise(columns[-1], CRLF, EMPTY, null_handling="replace", null_replacement="")
    return pc.binary_join_element_wise(*columns[:-1], last, COMMA, null_handling="replace", null_replacement="")


def patched_lines(columns: list[pa.ChunkedArray], lines: pa.ChunkedArray, rows: np.ndarray) -> list[pa.Buffer | bytes]:
    """``lines``' bytes in order, each of ``rows`` (ascending) replaced by the row as Python's ``csv``
    writes it (minimal quoting, CRLF: the same rules as ``quote_minimal``); the rest not copied."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator=LINE_END)
    out: list[pa.Buffer | bytes] = []
    start = 0
    for row in rows.tolist():
        out.extend(value_buffer(chunk) for chunk in lines.slice(start, row - start).chunks if len(chunk))
        text.seek(0)
        text.truncate()
        # Value by value: a take over chunked columns would first lay each whole column end to end.
        writer.writerow([column[row].as_py() for column in columns])
        out.append(text.getvalue().encode("utf-8"))
        start = row + 1
    out.extend(value_buffer(chunk) for chunk in lines.slice(start).chunks if len(chunk))
    return out


def single_chunk(values: pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)


def quote_values(text: pa.Array, needs: np.ndarray) -> pa.ChunkedArray:
    """``text`` with the values marked in ``needs`` quoted (inner quotes doubled)."""
    mask = pa.array(needs)
    quoted = pc.binary_join_element_wise(QUOTE, pc.replace_substring(text.filter(mask), '"', '""'), QUOTE, EMPTY)
    # A null value never needs quoting (mask false), so it stays null: an empty field.
    return pa.chunked_array([pc.replace_with_mask(text, mask, quoted)])


def quote_all(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """``quote_minimal`` over a whole chunked column: the values that need it are found from the
    column's bytes (``values_to_quote``), then only those (a few per group, typically) are quoted
    and put back in place."""
    text = single_chunk(values)
    needs = values_to_quote(text)
    return quote_values(text, needs) if needs.any() else values


def values_to_quote(text: pa.Array) -> np.ndarray:
    """Per value of a string array, whether it holds a comma, quote, CR or LF (False for null).

    The four are compared over the array's bytes at once; the few bytes found are mapped to the
    values holding them through the offsets (a value's range is [offset, next offset): empty and
    null values hold none), where a pattern search would start over at every value.
    """
    _, offsets, data = string_buffers(text)
    needs = np.zeros(len(text), dtype=bool)
    if data.size:
        found = np.flatnonzero(special_bytes(data))
        needs[np.searchsorted(offsets, found, side="right") - 1] = True
    return needs


def columns_to_quote(columns: list[pa.ChunkedArray]) -> list[bool]:
    """Per column, whether any of its values holds a comma, quote, CR or LF: the values of all
    columns are laid end to end by one Arrow call and compared byte-wise (SIMD), then reduced per
    column. (Reading each column's buffers from Python instead costs more than the comparisons.)"""
    _, offsets, data = string_buffers(pa.concat_arrays([chunk for values in columns for chunk in values.chunks]))
    bounds = offsets[np.cumsum([0] + [len(values) for values in columns])]
    quoting = [False] * len(columns)
    if not data.size:
        return quoting
    found = special_bytes(data)
    present = [i for i in range(len(columns)) if bounds[i + 1] > bounds[i]]
    for i, hits in zip(present, np.logical_or.reduceat(found, bounds[present]), strict=True):
        quoting[i] = bool(hits)
    return quoting

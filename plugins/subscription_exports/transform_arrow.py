"""Shape source chunks into the documented CSV with pyarrow compute kernels.

The source CSV is parsed in chunks with every column as text (so no value is ever rounded
through a float); the table declaration decides how each column is rendered; the chunk is
encoded to RFC 4180 CSV with minimal quoting by the same kernels. Per-row Python runs only
for JSON normalisation and the derived metrics, on the few columns that have them.

These are the kernels behind pandas' ``ArrowDtype``; pandas itself is not imported, which
keeps an export task about 45 MB smaller (the benchmark's memory bar is per task).
"""

from __future__ import annotations

import json
import threading
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc

# jemalloc returns freed memory to the OS sooner than Arrow's default mimalloc: about 20 MB
# less peak RSS per export task, same speed.
if "jemalloc" in pa.supported_memory_backends() and pa.default_memory_pool().backend_name != "jemalloc":
    pa.set_memory_pool(pa.jemalloc_memory_pool())
    pa.jemalloc_set_decay_ms(0)

from subscription_exports.parsing import value_bytes
from subscription_exports.tables import ATTRIBUTES, Kind, TableSpec

LINE_END = "\r\n"  # RFC 4180
CSV_SPECIALS = (b",", b'"', b"\r", b"\n")  # a value holding one of these is quoted
UTC_SUFFIXES = ("+00", "+00:00", "Z")  # UTC offsets as PostgreSQL and ISO 8601 write them
SIX_PLACES = Decimal("0.000001")


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


# -- value rendering -----------------------------------------------------------------------------


def _from_python(values: Sequence[str | None]) -> pa.Array:
    """A string array built from its buffers.

    Converting Python values the usual way (``pa.array``, ``pa.scalar``, a literal passed to a
    kernel) makes pyarrow import pandas: about 40 MB of every export task that nothing here uses.
    """
    offsets = array("i", [0])  # Arrow buffers are little-endian, as are the machines Airflow runs on
    validity = bytearray((len(values) + 7) // 8)
    parts: list[bytes] = []
    end = nulls = 0
    for i, value in enumerate(values):
        if value is None:
            nulls += 1
        else:
            encoded = value.encode("utf-8")
            parts.append(encoded)
            end += len(encoded)
            validity[i >> 3] |= 1 << (i & 7)
        offsets.append(end)
    bitmap = pa.py_buffer(bytes(validity)) if nulls else None
    buffers = [bitmap, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(parts))]
    return pa.Array.from_buffers(pa.string(), len(values), buffers, null_count=nulls)


def text_scalar(text: str) -> pa.Scalar:
    """A string scalar for kernel arguments (built from buffers: see ``_from_python``)."""
    return _from_python([text])[0]


EMPTY, COMMA, QUOTE = (text_scalar(t) for t in ("", ",", '"'))
UTC_OFFSET, ZERO, NEGATIVE_ZERO, CRLF = (text_scalar(t) for t in ("+00:00", "0", "-0", LINE_END))


def render_timestamp(values: pa.Array) -> pa.Array:
    """'2026-03-07 12:34:56.1+00' (PostgreSQL) or '2026-03-07 12:34:56.100000' (SQLite)
    -> '2026-03-07T12:34:56.100000+00:00'.

    Parse as a naive UTC timestamp and cast back to text (always 6 fraction digits); this is
    many times faster than ``strftime``. Literal kernels only: regexes cost RE2 memory per call.
    """
    naive = values
    for suffix in UTC_SUFFIXES:
        ends = pc.ends_with(naive, suffix)
        if pc.all(ends).as_py():  # the usual case: one source writes one form; nulls are skipped
            naive = pc.utf8_slice_codeunits(naive, 0, -len(suffix))
            break
        if pc.any(ends).as_py():
            naive = pc.if_else(ends, pc.utf8_slice_codeunits(naive, 0, -len(suffix)), naive)
    text = pc.cast(pc.cast(naive, pa.timestamp("us")), pa.string())
    return pc.binary_join_element_wise(pc.utf8_replace_slice(text, 10, 11, "T"), UTC_OFFSET, EMPTY)


def render_decimal(values: pa.Array) -> pa.Array:
    """Exact decimal text with trailing fractional zeros trimmed: '9.9900' -> '9.99', '10.0' -> '10'."""
    trimmed = pc.utf8_rtrim(pc.utf8_rtrim(values, "0"), ".")
    trimmed = pc.if_else(pc.match_substring(values, "."), trimmed, values)
    return pc.if_else(pc.equal(trimmed, NEGATIVE_ZERO), ZERO, trimmed)


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


def render_ratio(numerator: pa.Array, denominator: pa.Array, scale: int) -> pa.Array:
    pairs = zip(numerator.to_pylist(), denominator.to_pylist(), strict=True)
    return _from_python([ratio_text(n, d, scale) for n, d in pairs])


def quote_minimal(values: pa.Array) -> pa.Array:
    """Quote (and double inner quotes of) only values holding a comma, quote, CR or LF."""
    if values.type == pa.string():
        # Most columns of most chunks hold none of the four: a memchr over the chunk's bytes
        # settles that far cheaper than four kernels and their temporary arrays.
        data = value_bytes(values)
        if not any(special in data for special in CSV_SPECIALS):
            return values
    needs = pc.match_substring(values, ",")
    for special in ('"', "\r", "\n"):
        needs = pc.or_(needs, pc.match_substring(values, special))
    # `needs` is null exactly where the value is null; `any` skips nulls and `if_else` keeps a null
    # value null, so no fill_null (which costs ~10 ms per fresh chunk: most of the transform's time).
    if not pc.any(needs).as_py():
        return values
    quoted = pc.binary_join_element_wise(QUOTE, pc.replace_substring(values, '"', '""'), QUOTE, EMPTY)
    return pc.if_else(needs, quoted, values)


def rename_values(values: pa.Array, mapping: Mapping[str, str]) -> pa.Array:
    for source, target in mapping.items():
        values = pc.if_else(pc.equal(values, text_scalar(source)), text_scalar(target), values)
    return values


def json_column(values: pa.Array) -> pa.Array:
    """Normalise a JSON text column row by row (JSON needs a real parser), quoted for CSV on the way:
    almost every JSON value holds a quote, so the per-row pass is cheaper than ``quote_minimal``."""
    if values.null_count == len(values):
        return values
    return _from_python([_csv_field(normalize_json(v)) for v in values.to_pylist()])


def _csv_field(text: str | None) -> str | None:
    """``quote_minimal`` for one value."""
    if text is not None and ('"' in text or "," in text or "\n" in text or "\r" in text):
        return '"' + text.replace('"', '""') + '"'
    return text


def shape(batch: pa.RecordBatch, spec: TableSpec, options: ShapeOptions) -> list[pa.Array]:
    """One source chunk -> the file's columns as text arrays, in output order.

    Column-wise pyarrow kernels do the bulk; plain Python handles what needs it per value
    (JSON normalisation, exact Decimal ratios), on the few columns that have it.
    """
    out: list[pa.Array] = []
    for col in spec.columns:
        if col.kind is Kind.RATIO:
            num, den, scale = _ratio_inputs(spec, col.name)
            out.append(render_ratio(batch.column(num), batch.column(den), scale))
            continue
        values = batch.column(col.name)
        if col.kind is Kind.EVENT_TYPE:
            values = rename_values(pc.utf8_lower(values), options.rename_event_types)
            out.append(quote_minimal(values))
        elif col.kind is Kind.JSON:
            out.append(json_column(values))
        elif col.kind is Kind.TIMESTAMP:
            out.append(render_timestamp(values))
        elif col.kind is Kind.DECIMAL:
            out.append(render_decimal(values))
        elif col.kind in (Kind.INTEGER, Kind.DATE):
            out.append(values)  # both sources render these canonically already
        else:
            out.append(quote_minimal(values))
    if options.with_attributes:
        out.append(json_column(batch.column(ATTRIBUTES.name)))
    return out


def _ratio_inputs(spec: TableSpec, name: str) -> tuple[str, str, int]:
    ratio = dict(spec.ratios)[name]
    return ratio.numerator, ratio.denominator, ratio.scale


def encode_header(names: list[str]) -> bytes:
    return (",".join(names) + LINE_END).encode("utf-8")


def encode_rows(columns: list[pa.Array]) -> bytes:
    """Join text columns into CSV lines; the result's data buffer is the chunk's bytes."""
    if not columns or len(columns[0]) == 0:
        return b""
    # The line end is joined to the last column, not to whole lines: one pass less over the chunk.
    last = pc.binary_join_element_wise(columns[-1], CRLF, EMPTY, null_handling="replace", null_replacement="")
    lines = pc.binary_join_element_wise(*columns[:-1], last, COMMA, null_handling="replace", null_replacement="")
    if lines.offset or lines.null_count:
        lines = pa.concat_arrays([lines])
    offsets = lines.buffers()[1]
    start = int.from_bytes(offsets[:4], "little", signed=True)
    end = int.from_bytes(offsets[len(lines) * 4 : len(lines) * 4 + 4], "little", signed=True)
    return lines.buffers()[2][start:end].to_pybytes()

"""Typed Parquet (``format: parquet``) on tiny frames: declared types, the exact text-to-type
conversion, row groups, determinism, and every file read back by DuckDB (not Arrow) and compared
with the same text converted by plain Python (tests/parquet_check.py).

The sink is a recording stand-in for ``ObjectSink`` (the bytes Arrow's writer hands on, kept in
memory): what the writer does with the store is covered by tests/test_parquet_system.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parquet_check import assert_same_values, read_parquet

from devtools.synthetic import HOSTILE_TEXT
from subscription_exports import parquet, tables
from subscription_exports.config import ConfigError, validate_destination
from subscription_exports.integrations import CUSTOM_S3_UA_EXPORT, S3_EXPORT
from subscription_exports.tables import TABLES, Kind

ROOT = Path(__file__).resolve().parents[1]


class BytesSink:
    """Keeps what the writer writes, in order (the part of ``ObjectSink`` the writer uses)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data) -> None:
        self.data += memoryview(data).cast("B")


def columns_of(table: str) -> list[tables.Column]:
    spec = TABLES[table]
    return spec.output_columns(with_attributes=spec.supports_attributes)


def canonical(column: tables.Column, i: int) -> str | None:
    """A value of the column's kind as the shaped CSV text holds it (None: NULL every 7th row)."""
    if i % 7 == 3:
        return None
    kind = column.kind
    if kind is Kind.TIMESTAMP:
        moment = dt.datetime(2026, 3, 7, tzinfo=dt.UTC) + dt.timedelta(microseconds=i * 86_399_999_991 % 86_400_000_000)
        return moment.isoformat(timespec="microseconds")
    if kind is Kind.DATE:
        return (dt.date(1970, 1, 1) + dt.timedelta(days=i * 37 % 40_000)).isoformat()
    if kind is Kind.INTEGER:
        return str((-1) ** i * (i * 2_654_435_761 % 2**63))
    if kind is Kind.DECIMAL:
        return ["0", "9.99", "-0.0001", "99999999999999.9999", "-12345678901234.5", "10"][i % 6]
    if kind is Kind.RATIO:
        return ["0.000001", "123456789012345678.123456", "1", "0.5"][i % 4]
    if kind is Kind.JSON:
        return '{"a":1,"b":"x,\\"y\\"\\n"}' if i % 2 else "{}"
    return HOSTILE_TEXT[i % len(HOSTILE_TEXT)] if i % 3 else f"text {i}"


def text_group(columns: list[tables.Column], start: int, rows: int) -> list[pa.ChunkedArray]:
    return [pa.chunked_array([pa.array([canonical(c, i) for i in range(start, start + rows)], pa.string())])
            for c in columns]  # fmt: skip


def csv_of(columns: list[tables.Column], groups: list[list[pa.ChunkedArray]]) -> bytes:
    """The same text as a CSV file (Python's csv module; NULL as an empty field)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in columns])
    for group in groups:
        for row in zip(*(values.to_pylist() for values in group), strict=True):
            writer.writerow(["" if v is None else v for v in row])
    return out.getvalue().encode()


def write_file(columns, groups, **kw) -> tuple[bytes, parquet.ParquetFile]:
    sink = BytesSink()
    kw.setdefault("compression", "zstd")
    file = parquet.ParquetFile(sink, columns, destination="dest", table="t", **kw)
    for group in groups:
        file.write(group)
    file.close()
    return bytes(sink.data), file


def declared(columns: list[tables.Column]) -> list[tuple[str, str]]:
    return [(c.name, c.parquet_type) for c in columns]


# -- the declarations -------------------------------------------------------------------------------


def test_every_column_declares_the_type_its_kind_calls_for() -> None:
    wanted = {Kind.TEXT: "string", Kind.EVENT_TYPE: "string", Kind.JSON: "string", Kind.INTEGER: "int64",
              Kind.TIMESTAMP: "timestamp[us, tz=UTC]", Kind.DATE: "date32[day]"}  # fmt: skip
    for spec in TABLES.values():
        for column in spec.output_columns(with_attributes=spec.supports_attributes):
            arrow = parquet.arrow_type(column.parquet_type)
            assert str(arrow) == column.parquet_type  # the declaration is Arrow's own spelling
            if column.kind is Kind.RATIO:
                assert pa.types.is_decimal(arrow) and arrow.scale == 6, column
            elif column.kind is Kind.DECIMAL:
                assert pa.types.is_decimal(arrow), column  # never a float
            else:
                assert column.parquet_type == wanted[column.kind], column


def test_money_has_the_source_columns_precision_and_scale() -> None:
    schema = (ROOT / "include" / "sql" / "postgres" / "schema.sql").read_text()
    numeric = {m[1]: f"decimal128({m[2]}, {m[3]})" for m in re.finditer(r"(\w+)\s+numeric\((\d+),\s*(\d+)\)", schema)}
    money = [c for spec in TABLES.values() for c in spec.columns if c.kind is Kind.DECIMAL]
    assert len(money) >= 11
    for column in money:
        assert column.parquet_type == numeric[column.name], column.name


def test_the_querying_page_is_written_from_the_declarations() -> None:
    from devtools import doc_querying

    page = (ROOT / "docs" / "querying.md").read_text(encoding="utf-8")
    assert doc_querying.render(page) == page, "run `.venv/bin/python -m devtools.doc_querying`"


def test_the_table_shapes_page_lists_each_columns_parquet_type() -> None:
    page = (ROOT / "docs" / "table-shapes.md").read_text()
    for spec in TABLES.values():
        assert tables.markdown_table(spec) in page
    assert "`decimal128(18, 4)`" in page and "`timestamp[us, tz=UTC]`" in page


# -- files read back by DuckDB ----------------------------------------------------------------------


@pytest.mark.parametrize("table", sorted(TABLES))
@pytest.mark.parametrize("compression", parquet.COMPRESSIONS)
def test_a_file_holds_the_texts_values_typed_as_duckdb_reads_them(table, compression) -> None:
    columns = columns_of(table)
    groups = [text_group(columns, 0, 1), text_group(columns, 1, 50), text_group(columns, 51, 13)]
    body, file = write_file(columns, groups, compression=compression)
    assert body[:4] == body[-4:] == b"PAR1"
    assert assert_same_values(body, csv_of(columns, groups), declared(columns), where=table) == 64 == file.rows
    assert file.row_groups == 1


def test_nulls_in_every_column_and_empty_text() -> None:
    columns = columns_of("events")
    nulls = [pa.chunked_array([pa.array([None, None], pa.string())]) for _ in columns]
    empties = [pa.chunked_array([pa.array(["", ""], pa.string())]) for _ in columns]
    body, _ = write_file(columns, [nulls, empties])
    _, rows = read_parquet(body, [c.parquet_type for c in columns])
    # An empty value is NULL in every column, as the CSV writes both alike.
    assert rows == [(None,) * len(columns)] * 4


@pytest.mark.parametrize("table", ["events", "campaign_performance"])
def test_an_empty_day_is_a_valid_file_with_the_schema_and_no_rows(table) -> None:
    columns = columns_of(table)
    body, file = write_file(columns, [])
    schema, rows = read_parquet(body, [c.parquet_type for c in columns])
    assert rows == [] and file.rows == 0 and file.row_groups == 0
    assert [name for name, _ in schema] == [c.name for c in columns]
    assert assert_same_values(body, csv_of(columns, []), declared(columns), where=table) == 0


def test_giant_values_and_a_row_group_bound_by_bytes() -> None:
    columns = columns_of("ua_events")
    giant = '😀,"\r\n' * 300_000  # 3.3 MB of hostile text in one value
    groups = [text_group(columns, 0, 30)]
    json_at = [c.name for c in columns].index("custom_parameters")
    groups.append(text_group(columns, 30, 4))
    groups[1][json_at] = pa.chunked_array([pa.array([giant, None, giant, "{}"], pa.string())])
    body, file = write_file(columns, groups, row_group_bytes=4 << 20)
    # Rows 1-32 hold the first giant value (3.3 MB) and stay within 4 MiB; the second one starts the next.
    assert row_group_rows(body) == [32, 2] and file.row_groups == 2
    assert assert_same_values(body, csv_of(columns, groups), declared(columns), where="giant") == 34


def test_row_groups_end_where_the_rows_say_and_the_bytes_do_not_depend_on_chunking() -> None:
    columns = columns_of("events")
    rows = 2_500
    one = [text_group(columns, 0, rows)]
    many = [text_group(columns, start, n) for start, n in ((0, 1), (1, 999), (1000, 1), (1001, 1499))]
    ragged = [text_group(columns, start, min(7, rows - start)) for start in range(0, rows, 7)]
    bodies = []
    for groups in (one, many, ragged):
        body, file = write_file(columns, groups, row_group_rows=1_000)
        assert file.row_groups == 3 and file.rows == rows
        bodies.append(body)
    assert bodies[0] == bodies[1] == bodies[2]
    assert write_file(columns, many, row_group_rows=1_000)[0] == bodies[0]  # again: the same bytes
    assert assert_same_values(bodies[0], csv_of(columns, one), declared(columns), where="boundaries") == rows
    assert row_group_rows(bodies[0]) == [1000, 1000, 500]


def row_group_rows(body: bytes) -> list[int]:
    metadata = pq.ParquetFile(io.BytesIO(body)).metadata
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


# -- values that cannot convert exactly -------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("revenue_usd", "abc", "'abc' is not a decimal of at most 14 integer digits and 4 places"),
        ("revenue_usd", "9.99999", "'9.99999' is not a decimal"),
        ("revenue_usd", "1" * 15, "is not a decimal of at most 14 integer digits"),
        ("ab_test_revision", "1.0", "'1.0' is not a whole number within 64 bits"),
        ("ab_test_revision", str(2**63), "is not a whole number"),
        ("event_datetime", "2026-03-07T12:34:56.1234567+00:00", "to the microsecond"),
        ("event_datetime", "2026-03-07 12:34:56", "is not an ISO 8601 timestamp with an offset"),
    ],
)
def test_a_value_that_cannot_convert_exactly_fails_with_one_line(column, value, says) -> None:
    columns = columns_of("events")
    group = text_group(columns, 0, 20)
    at = [c.name for c in columns].index(column)
    values = group[at].to_pylist()
    values[12] = value
    group[at] = pa.chunked_array([pa.array(values[:5], pa.string()), pa.array(values[5:], pa.string())])
    sink = BytesSink()
    file = parquet.ParquetFile(sink, columns, compression="zstd", destination="acme", table="events")
    file.write(text_group(columns, 0, 100))
    with pytest.raises(parquet.ConversionError) as info:
        file.write(group)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"destination 'acme': table 'events': column '{column}': row 113: value ")
    assert says in message
    file.abort()
    before = len(sink.data)
    del file  # a writer collected after abort() writes nothing more
    assert len(sink.data) == before


def test_an_error_line_shortens_the_value() -> None:
    columns = columns_of("campaign_performance")
    group = text_group(columns, 0, 3)
    group[[c.name for c in columns].index("spend_usd")] = pa.chunked_array([pa.array(["1", "\n" + "x" * 5000, "2"])])
    file = parquet.ParquetFile(BytesSink(), columns, compression="none", destination="d", table="campaign_performance")
    with pytest.raises(parquet.ConversionError, match=r"row 2: value '\\nx{59}'\.\.\. is not a decimal") as info:
        file.write(group)
    assert len(str(info.value)) < 300


# -- the conversion against Python's own parsing ----------------------------------------------------

DIGITS = st.text("0123456789", min_size=1, max_size=22)
DECIMAL_TEXT = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.builds(lambda s, i, f: f"{s}{i}.{f}", st.sampled_from(["", "-", "+"]), DIGITS, DIGITS),
    st.builds(lambda i, e: f"{i}e{e}", DIGITS, st.integers(-8, 8)),
    st.text("0123456789.-+eE ,x", max_size=12),
)
INTEGER_TEXT = st.one_of(
    st.integers(-(2**64), 2**64).map(str), st.text("0123456789-+ .e", max_size=22)
)  # fmt: skip
TIMESTAMP_TEXT = st.one_of(
    st.datetimes(timezones=st.just(dt.UTC)).map(lambda d: d.isoformat(timespec="microseconds")),
    st.datetimes(timezones=st.just(dt.timezone(dt.timedelta(hours=-5)))).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat(timespec="microseconds")),  # no offset: refused
    st.builds(lambda d, f: d.strftime("%Y-%m-%dT%H:%M:%S.") + f + "+00:00", st.datetimes(), DIGITS),
    st.text("0123456789-:T.+Z ", max_size=34),
)
DATE_TEXT = st.one_of(st.dates().map(dt.date.isoformat), st.text("0123456789-", max_size=11))


def python_value(text: str, type_name: str):
    """Python's own parse of the text as the type, or None where Python refuses or the type cannot hold it."""
    type_ = parquet.arrow_type(type_name)
    try:
        if pa.types.is_decimal(type_):
            with localcontext(prec=100):  # exact for every value the strategies make
                value = Decimal(text)
                if not value.is_finite() or value != value.quantize(Decimal(1).scaleb(-type_.scale)):
                    return None
                return value if abs(value) < Decimal(10) ** (type_.precision - type_.scale) else None
        if pa.types.is_integer(type_):
            value = int(text)
            return value if -(2**63) <= value < 2**63 else None
        if pa.types.is_timestamp(type_):
            value = dt.datetime.fromisoformat(text)
            return value.astimezone(dt.UTC) if value.tzinfo is not None else None
        return dt.date.fromisoformat(text)
    except (ValueError, InvalidOperation, OverflowError):
        return None


def check_conversion(text: str, type_name: str) -> None:
    values = pa.chunked_array([pa.array([text], pa.string())])
    expected = python_value(text, type_name)
    try:
        got = parquet.convert(values, parquet.arrow_type(type_name)).to_pylist()[0]
    except pa.ArrowInvalid:
        got = "refused"
    if text == "":
        assert got is None, "an empty value is NULL, as the CSV's empty field"
        return
    if got == "refused":
        # Refusing is always safe (the export fails with one line); what must be accepted is every
        # value in the form the exporter's CSV writes it.
        return
    assert expected is not None, f"{text!r} converted to {got!r}, which Python does not read as {type_name}"
    if pa.types.is_timestamp(parquet.arrow_type(type_name)):
        got = got.astimezone(dt.UTC)
    assert got == expected, f"{text!r}: Arrow {got!r}, Python {expected!r}"


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    DECIMAL_TEXT.map(lambda t: (t, "decimal128(18, 4)")),
    DECIMAL_TEXT.map(lambda t: (t, "decimal128(38, 6)")),
    INTEGER_TEXT.map(lambda t: (t, "int64")),
    TIMESTAMP_TEXT.map(lambda t: (t, "timestamp[us, tz=UTC]")),
    DATE_TEXT.map(lambda t: (t, "date32[day]")),
))  # fmt: skip
def test_what_converts_is_what_python_reads(case) -> None:
    check_conversion(*case)


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(min_value=Decimal("-99999999999999.9999"), max_value=Decimal("99999999999999.9999"), places=4),
    st.integers(-(2**63), 2**63 - 1),
    st.datetimes(min_value=dt.datetime(1, 1, 1), timezones=st.just(dt.UTC)),
    st.dates(),
)
def test_every_value_in_the_files_own_text_form_converts(money, count, moment, day) -> None:
    """The CSV's forms (trimmed decimals, integers without '.0', ISO 8601 UTC with 6 digits, dates)
    always convert, to exactly Python's value."""
    text = format(money.normalize(), "f") if money else "0"
    for value, type_name, want in (
        (text, "decimal128(18, 4)", money),
        (str(count), "int64", count),
        (moment.isoformat(timespec="microseconds"), "timestamp[us, tz=UTC]", moment),
        (day.isoformat(), "date32[day]", day),
    ):
        got = parquet.convert(pa.chunked_array([pa.array([value])]), parquet.arrow_type(type_name)).to_pylist()[0]
        if isinstance(got, dt.datetime):
            got = got.astimezone(dt.UTC)
        assert got == want, value


# -- configuration ----------------------------------------------------------------------------------

BASE = {"name": "p", "conn_id": "s3", "bucket": "exports", "app_id": "com.a"}


def test_format_and_compression_settings() -> None:
    dest = validate_destination(BASE | {"format": "parquet"}, S3_EXPORT, origin="test")
    assert (dest.format, dest.parquet_compression, dest.extension) == ("parquet", "zstd", "parquet")
    for compression in parquet.COMPRESSIONS:
        dest = validate_destination(BASE | {"format": "parquet", "compression": compression}, CUSTOM_S3_UA_EXPORT,
                                    origin="test")  # fmt: skip
        assert dest.parquet_compression == compression
    plain = validate_destination(BASE, S3_EXPORT, origin="test")
    assert (plain.format, plain.extension) == ("csv", "csv")


@pytest.mark.parametrize(
    ("settings", "field", "says"),
    [
        ({"format": "parquet", "gzip": True}, "gzip", "applies to format 'csv' only"),
        ({"compression": "zstd"}, "compression", "applies to format 'parquet' only"),
        ({"format": "parquet", "compression": "brotli"}, "compression", "'zstd', 'snappy', 'gzip' or 'none'"),
        ({"format": "orc"}, "format", "'csv' or 'parquet'"),
    ],
)
def test_bad_format_settings_fail_with_one_line(settings, field, says) -> None:
    with pytest.raises(ConfigError) as info:
        validate_destination(BASE | settings, S3_EXPORT, origin="test")
    assert f"destination 'p': field '{field}'" in str(info.value) and says in str(info.value)
    assert "\n" not in str(info.value)

"""transform.py on tiny hand-made intermediate CSVs: exact output bytes, plus a round-trip property."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subscription_exports.parsing import open_chunks
from subscription_exports.tables import CAMPAIGN_PERFORMANCE, EVENTS, PAYWALL_VISITS, UA_EVENTS, Kind, TableSpec
from subscription_exports.transform import (
    ShapeOptions,
    encode_header,
    encode_rows,
    encode_shaped,
    grouped,
    output_quoting,
    quote_minimal,
    shape,
    shape_columns,
    source_columns,
    values_to_quote,
)

CRLF = "\r\n"

# -- helpers -------------------------------------------------------------------------------------


def pg_field(value: str | None) -> str:
    """One field as PostgreSQL's COPY ... CSV writes it: NULL unquoted empty, '' as "", quoting when needed."""
    if value is None:
        return ""
    if value == "" or any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def intermediate(spec: TableSpec, rows: Sequence[Mapping[str, str | None]], line_end: str = "\n") -> bytes:
    """The intermediate CSV the SQL stage produces: header + rows, columns absent from a row are NULL."""
    columns = source_columns(spec)
    unknown = {k for row in rows for k in row} - set(columns)
    assert not unknown, f"test bug: no such source columns {unknown}"
    lines = [",".join(columns)] + [",".join(pg_field(row.get(c)) for c in columns) for row in rows]
    return (line_end.join(lines) + line_end).encode("utf-8")


def transform(spec: TableSpec, data: bytes, options: ShapeOptions | None = None, *, block_size: int = 4 << 20) -> bytes:
    """open_chunks -> shape -> encode with encode_header: the whole file's bytes.

    Both of the exporter's paths, which must agree: a destination without a step of its own
    (``shape_columns`` -> ``encode_shaped``, no DataFrame) and one with a step (``shape`` -> the
    step's DataFrame -> ``encode_rows``; the step here returns the frame unchanged)."""
    options = options or ShapeOptions()
    out = [encode_header(spec.header(with_attributes=options.with_attributes))]
    for batch in open_chunks(io.BytesIO(data), source_columns(spec), block_size=block_size):
        lines = b"".join(encode_shaped(shape_columns(batch, spec, options)))
        assert encode_rows(shape(batch, spec, options)) == lines
        out.append(lines)
    return b"".join(out)


def run(spec: TableSpec, rows: Sequence[Mapping[str, str | None]], options: ShapeOptions | None = None) -> bytes:
    return transform(spec, intermediate(spec, rows), options)


def header(spec: TableSpec, *, with_attributes: bool = False) -> bytes:
    return (",".join(spec.header(with_attributes=with_attributes)) + CRLF).encode()


def line(spec: TableSpec, values: Mapping[str, str], *, with_attributes: bool = False) -> bytes:
    """An expected output line: ``values`` are already-rendered fields, every other column empty."""
    names = spec.header(with_attributes=with_attributes)
    assert set(values) <= set(names), f"test bug: {set(values) - set(names)}"
    return (",".join(values.get(n, "") for n in names) + CRLF).encode("utf-8")


def python_csv(rows: Sequence[Sequence[str]]) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator=CRLF).writerows(rows)
    return buf.getvalue().encode("utf-8")


def only_row(spec: TableSpec, out: bytes, *, with_attributes: bool = False) -> dict[str, str]:
    rows = list(csv.reader(io.StringIO(out.decode("utf-8"), newline="")))
    assert rows[0] == spec.header(with_attributes=with_attributes)
    assert len(rows) == 2, rows
    return dict(zip(rows[0], rows[1], strict=True))


# -- shape of the file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "with_attributes"),
    [
        (spec, attrs)
        for spec in (EVENTS, PAYWALL_VISITS, UA_EVENTS, CAMPAIGN_PERFORMANCE)
        for attrs in (False, True)
        if spec.supports_attributes or not attrs
    ],
    ids=lambda v: v.name if isinstance(v, TableSpec) else ("attributes" if v else "plain"),
)
def test_zero_rows_is_header_only(spec: TableSpec, with_attributes: bool) -> None:
    out = run(spec, [], ShapeOptions(with_attributes=with_attributes))
    assert out == header(spec, with_attributes=with_attributes)
    assert out.endswith(b"\r\n") and out.count(b"\n") == 1


def test_documented_headers() -> None:
    assert header(EVENTS).startswith(b"profile_id,event_type,event_datetime,transaction_id,")
    assert b",profile_county," in header(EVENTS)
    assert header(PAYWALL_VISITS, with_attributes=True).endswith(b",paywall_revision,attributes\r\n")
    assert header(CAMPAIGN_PERFORMANCE).endswith(b",spend_local,cpi_usd,cpc_usd,cpm_usd,ctr,icr,ipm,ltv_usd\r\n")


def test_paywall_visits_exact_bytes() -> None:
    rows = [
        {
            "profile_id": "p1",
            "customer_user_id": None,
            "profile_country": "US",
            "install_date": "2026-03-07 12:34:56.1+00",
            "store": "app_store",
            "paywall_showed_at": "2026-03-07 00:00:00+00",
            "developer_id": "a,b",
            "ab_test_name": 'x"y',
            "ab_test_revision": "3",
            "paywall_name": "",
            "paywall_revision": "12",
            "attributes": '{"b": 1, "a": "x"}',
        },
        {
            "profile_id": "p2",
            "install_date": "2026-03-07 23:59:59.999999",
            "store": "line\nbreak",
            "paywall_showed_at": "2026-03-07 23:59:59.999999+00",
            "developer_id": "=1+1",
            "ab_test_name": " lead ",
            "paywall_name": "NA",
            "attributes": '{"a":"x","b":1}',
        },
    ]
    expected = (
        b"profile_id,customer_user_id,profile_country,install_date,store,paywall_showed_at,developer_id,"
        b"ab_test_name,ab_test_revision,paywall_name,paywall_revision,attributes\r\n"
        b'p1,,US,2026-03-07T12:34:56.100000+00:00,app_store,2026-03-07T00:00:00.000000+00:00,"a,b","x""y",3,,12,'
        b'"{""a"":""x"",""b"":1}"\r\n'
        b'p2,,,2026-03-07T23:59:59.999999+00:00,"line\nbreak",2026-03-07T23:59:59.999999+00:00,=1+1, lead ,,NA,,'
        b'"{""a"":""x"",""b"":1}"\r\n'
    )
    assert run(PAYWALL_VISITS, rows, ShapeOptions(with_attributes=True)) == expected
    # Without the setting the source still returns `attributes`, but the file has no such column.
    assert run(PAYWALL_VISITS, rows) == (
        b"profile_id,customer_user_id,profile_country,install_date,store,paywall_showed_at,developer_id,"
        b"ab_test_name,ab_test_revision,paywall_name,paywall_revision\r\n"
        b'p1,,US,2026-03-07T12:34:56.100000+00:00,app_store,2026-03-07T00:00:00.000000+00:00,"a,b","x""y",3,,12\r\n'
        b'p2,,,2026-03-07T23:59:59.999999+00:00,"line\nbreak",2026-03-07T23:59:59.999999+00:00,=1+1, lead ,,NA,\r\n'
    )


def test_crlf_line_ends_whatever_the_intermediate_uses() -> None:
    rows = [{"profile_id": "p1"}, {"profile_id": "p2"}]
    lf = transform(PAYWALL_VISITS, intermediate(PAYWALL_VISITS, rows, "\n"))
    crlf = transform(PAYWALL_VISITS, intermediate(PAYWALL_VISITS, rows, "\r\n"))
    assert lf == crlf == header(PAYWALL_VISITS) + b"p1,,,,,,,,,,\r\np2,,,,,,,,,,\r\n"
    assert b"\n" not in lf.replace(b"\r\n", b"")


# -- timestamps ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ("2026-03-07 12:34:56.1+00", "2026-03-07T12:34:56.100000+00:00"),  # PostgreSQL timestamptz text
        ("2026-03-07 12:34:56.123456+00", "2026-03-07T12:34:56.123456+00:00"),
        ("2026-03-07 00:00:00+00", "2026-03-07T00:00:00.000000+00:00"),
        ("2026-03-07 00:00:00+00:00", "2026-03-07T00:00:00.000000+00:00"),
        ("2026-03-07 23:59:59.999999", "2026-03-07T23:59:59.999999+00:00"),  # SQLite text
        ("2026-03-07 01:02:03", "2026-03-07T01:02:03.000000+00:00"),
        ("2026-03-07T01:02:03.5Z", "2026-03-07T01:02:03.500000+00:00"),
        (None, ""),
    ],
)
def test_timestamps(source: str | None, rendered: str) -> None:
    out = run(PAYWALL_VISITS, [{"profile_id": "p", "install_date": source, "paywall_showed_at": source}])
    assert out == header(PAYWALL_VISITS) + line(
        PAYWALL_VISITS, {"profile_id": "p", "install_date": rendered, "paywall_showed_at": rendered}
    )


def test_timestamps_of_mixed_forms_in_one_chunk() -> None:
    forms = ["2026-03-07 12:34:56.1+00", "2026-03-07 12:34:56.1+00:00", "2026-03-07T12:34:56.1Z", None,
             "2026-03-07 12:34:56.1"]  # fmt: skip
    rows = [{"profile_id": f"p{i}", "install_date": v, "paywall_showed_at": v} for i, v in enumerate(forms)]
    out = run(PAYWALL_VISITS, rows)
    rendered = ["2026-03-07T12:34:56.100000+00:00" if v else "" for v in forms]
    expected = [
        line(PAYWALL_VISITS, {"profile_id": f"p{i}", "install_date": r, "paywall_showed_at": r})
        for i, r in enumerate(rendered)
    ]
    assert out == header(PAYWALL_VISITS) + b"".join(expected)


@pytest.mark.parametrize("start", [0, 1, 2, 5])
def test_iso_utc_rewrites_slices_with_nulls_byte_for_byte(start: int) -> None:
    """The fixed-width rewrite of Arrow's timestamp text, against Python's own formatting."""
    import datetime as dt

    from subscription_exports.transform import iso_utc

    stamps = [dt.datetime(2026, 3, 7, 12, 34, 56, 100000), None, dt.datetime(1, 1, 1), None,
              dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(2026, 1, 1)]  # fmt: skip
    text = pa.array(stamps, pa.timestamp("us")).cast(pa.string()).slice(start)
    expected = [None if v is None else v.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").rjust(32, "0") for v in stamps[start:]]
    assert iso_utc(text).to_pylist() == expected


def test_iso_utc_refuses_text_not_of_arrows_width() -> None:
    from subscription_exports.transform import iso_utc

    with pytest.raises(ValueError, match="not 26 bytes long"):
        iso_utc(pa.array(["2026-03-07 12:34:56.100000", "2026-03-07 12:34:56.10000"]))


@pytest.mark.parametrize("start", [0, 1, 2, 3])
def test_quoting_of_array_slices(start: int) -> None:
    """Chunks may be slices of a larger buffer: only the slice's own values decide the quoting."""
    values = pa.array(["a,b", "plain", "x", 'q"q', None, "ok"])
    piece = values.slice(start, 2)
    expected = [None if v is None else (f'"{v.replace(chr(34), 2 * chr(34))}"' if any(c in v for c in ',"') else v)
                for v in values.to_pylist()[start : start + 2]]  # fmt: skip
    assert quote_minimal(piece).to_pylist() == expected


# -- decimals and integers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ("9.9900", "9.99"),
        ("10.0000", "10"),
        ("0.1000", "0.1"),
        ("0", "0"),
        ("0.0000", "0"),
        ("-0.0000", "0"),
        ("-1.5000", "-1.5"),
        ("1234.5", "1234.5"),
        ("100", "100"),
        ("100.0", "100"),
        ("0.0001", "0.0001"),
        ("999999999999.9999", "999999999999.9999"),
        (None, ""),
        ("", ""),
    ],
)
def test_decimals(source: str | None, rendered: str) -> None:
    out = run(EVENTS, [{"revenue_usd": source, "tax_amount_local": source}])
    assert out == header(EVENTS) + line(EVENTS, {"revenue_usd": rendered, "tax_amount_local": rendered})


@pytest.mark.parametrize("value", ["0", "7", "-3", "2147483648", "12"])
def test_integers_unchanged(value: str) -> None:
    out = run(EVENTS, [{"ab_test_revision": value, "paywall_revision": value}])
    assert out == header(EVENTS) + line(EVENTS, {"ab_test_revision": value, "paywall_revision": value})


# -- event types ---------------------------------------------------------------------------------


def test_event_type_lower_case_and_rename() -> None:
    rows = [
        {"event_type": "TRIAL_STARTED"},
        {"event_type": "Subscription_Renewed"},
        {"event_type": "trial_converted"},
        {"event_type": None},
    ]
    options = ShapeOptions(rename_event_types={"trial_started": "trial", "subscription_renewed": "renewal, paid"})
    out = run(EVENTS, rows, options)
    assert out == header(EVENTS) + b"".join(
        line(EVENTS, {"event_type": v}) for v in ("trial", '"renewal, paid"', "trial_converted", "")
    )
    plain = run(EVENTS, rows)
    assert plain == header(EVENTS) + b"".join(
        line(EVENTS, {"event_type": v}) for v in ("trial_started", "subscription_renewed", "trial_converted", "")
    )


def test_ua_event_type_and_rename() -> None:
    out = run(
        UA_EVENTS,
        [{"event_type": "INSTALL"}, {"event_type": "Click"}],
        ShapeOptions(rename_event_types={"install": "app_install"}),
    )
    assert out == header(UA_EVENTS) + line(UA_EVENTS, {"event_type": "app_install"}) + line(
        UA_EVENTS, {"event_type": "click"}
    )


# -- JSON ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ('{"b": 1, "a": "x"}', '"{""a"":""x"",""b"":1}"'),  # PostgreSQL jsonb text
        ('{"a":"x","b":1}', '"{""a"":""x"",""b"":1}"'),  # SQLite compact text
        ('{"z": {"y": [1, 2.50, null], "x": true}}', '"{""z"":{""x"":true,""y"":[1,2.50,null]}}"'),
        ('{"name": "Zoë 😀 東京"}', '"{""name"":""Zoë 😀 東京""}"'),  # non-ASCII kept as is
        ('{"s": "a\\nb"}', '"{""s"":""a\\nb""}"'),  # escaped newline stays escaped
        ("{}", "{}"),
        ("[]", "[]"),
        ("null", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_json_normalization(source: str | None, rendered: str) -> None:
    out = run(UA_EVENTS, [{"custom_parameters": source, "attributes": source}], ShapeOptions(with_attributes=True))
    assert out == header(UA_EVENTS, with_attributes=True) + line(
        UA_EVENTS, {"custom_parameters": rendered, "attributes": rendered}, with_attributes=True
    )


def test_postgres_and_sqlite_json_renderings_agree() -> None:
    pg = run(UA_EVENTS, [{"custom_parameters": '{"b": 1, "a": {"d": [], "c": "é"}}'}])
    lite = run(UA_EVENTS, [{"custom_parameters": '{"a":{"c":"\\u00e9","d":[]},"b":1}'}])
    assert pg == lite
    assert only_row(UA_EVENTS, pg)["custom_parameters"] == '{"a":{"c":"é","d":[]},"b":1}'


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('{"v": 12345678901234567.89}', '{"v":12345678901234567.89}'),
        ('{"v": 0.12345678901234567890}', '{"v":0.12345678901234567890}'),
        ('{"v": 1e400}', None),  # any valid JSON for 1e400, not "Infinity"
    ],
)
def test_json_numbers_keep_their_value(source: str, expected: str | None) -> None:
    import json

    got = only_row(UA_EVENTS, run(UA_EVENTS, [{"custom_parameters": source}]))["custom_parameters"]
    assert "Infinity" not in got
    assert json.loads(got, parse_float=Decimal) == json.loads(source, parse_float=Decimal)
    if expected is not None:
        assert got == expected


# -- quoting -------------------------------------------------------------------------------------

HOSTILE = [
    ("plain", "plain"),
    ("a,b", '"a,b"'),
    ('say "hi"', '"say ""hi"""'),
    ('"', '""""'),
    ("line\nbreak", '"line\nbreak"'),
    ("carriage\rreturn", '"carriage\rreturn"'),
    ("windows\r\nline", '"windows\r\nline"'),
    ("trailing\n", '"trailing\n"'),
    ("😀 emoji", "😀 emoji"),
    ("=SUM(A1:A2)", "=SUM(A1:A2)"),
    ("+1", "+1"),
    ("  spaces  ", "  spaces  "),
    ("NA", "NA"),
    ("NULL", "NULL"),
    ("\\N", "\\N"),
    ("tab\there", "tab\there"),
    ("'quote", "'quote"),
    ("", ""),
]


@pytest.mark.parametrize(("value", "rendered"), HOSTILE, ids=[repr(v) for v, _ in HOSTILE])
def test_minimal_quoting_like_python_csv(value: str, rendered: str) -> None:
    out = run(PAYWALL_VISITS, [{"profile_id": "p", "developer_id": value, "paywall_name": value}])
    expected_line = line(PAYWALL_VISITS, {"profile_id": "p", "developer_id": rendered, "paywall_name": rendered})
    assert out == header(PAYWALL_VISITS) + expected_line
    # Byte for byte what Python's csv module writes with lineterminator '\r\n'.
    names = PAYWALL_VISITS.column_names
    fields = {"profile_id": "p", "developer_id": value, "paywall_name": value}
    assert out == python_csv([names, [fields.get(n, "") for n in names]])
    # ...and it reads back as the value.
    assert only_row(PAYWALL_VISITS, out)["developer_id"] == value


def test_text_columns_of_every_table_are_quoted() -> None:
    value = 'a,"b"\r\nc'
    for spec, column in ((EVENTS, "product_id"), (UA_EVENTS, "user_agent"), (CAMPAIGN_PERFORMANCE, "ad_name")):
        out = run(spec, [{column: value}])
        assert out == header(spec) + line(spec, {column: '"a,""b""\r\nc"'}), spec.name
        assert only_row(spec, out)[column] == value


def test_small_blocks_give_the_same_bytes() -> None:
    # Values with newlines cross pyarrow's block boundaries; the output must not depend on chunking.
    rows = [
        {"profile_id": f"p{i}", "store": f'line {i}\nnext, "quoted"\r\n{"x" * (i % 17)}', "paywall_revision": str(i)}
        for i in range(300)
    ]
    data = intermediate(PAYWALL_VISITS, rows)
    whole = transform(PAYWALL_VISITS, data)
    chunked = transform(PAYWALL_VISITS, data, block_size=1024)
    assert chunked == whole
    parsed = list(csv.reader(io.StringIO(whole.decode(), newline="")))
    assert [r[4] for r in parsed[1:]] == [r["store"] for r in rows]


def test_grouped_chunks_give_the_same_bytes() -> None:
    """The exporter shapes groups of parsed chunks at once (columns chunked, kinds stacked): the bytes
    must not depend on the grouping, whatever mix of forms the chunks hold."""
    forms = ["2026-03-07 12:34:56.1+00", "2026-03-07 12:34:56.1", "2026-03-07T12:34:56.1Z", None]
    amounts = ["9.9900", "10", "-0.0000", None, "0.5", ""]
    rows = [
        {"profile_id": f"p{i}", "event_type": "TRIAL_STARTED" if i % 3 else "Renewal", "event_datetime": forms[i % 4],
         "install_date": forms[(i // 4) % 4], "revenue_usd": amounts[i % 6], "tax_amount_local": amounts[(i // 6) % 6],
         "device": f'dev {i}\n"x", y' if i % 7 == 0 else f"dev {i}", "paywall_revision": str(i),
         "attributes": '{"b": 1.50, "a": [1, 2]}' if i % 5 == 0 else None}
        for i in range(400)
    ]  # fmt: skip
    data = intermediate(EVENTS, rows)
    options = ShapeOptions(with_attributes=True, rename_event_types={"trial_started": "trial"})
    whole = transform(EVENTS, data, options)
    for group_bytes in (1, 4096, 1 << 30):
        chunks = grouped(open_chunks(io.BytesIO(data), source_columns(EVENTS), block_size=2048), group_bytes)
        body = b"".join(b"".join(encode_shaped(shape_columns(chunk, EVENTS, options))) for chunk in chunks)
        assert header(EVENTS, with_attributes=True) + body == whole, group_bytes


# -- campaign performance derived metrics ------------------------------------------------------

CAMPAIGN = {
    "campaign_id": "c1",
    "campaign_name": "Spring",
    "adset_id": "as1",
    "adset_name": "Adset",
    "ad_id": "ad1",
    "ad_name": "Ad",
    "platform": "Meta",
    "date": "2026-03-07",
}
METRICS = ("cpi_usd", "cpc_usd", "cpm_usd", "ctr", "icr", "ipm")


def campaign_row(
    impressions: str | None, clicks: str | None, installs: str | None, spend: str | None
) -> dict[str, str | None]:
    return {
        **CAMPAIGN,
        "impressions": impressions,
        "clicks": clicks,
        "installs": installs,
        "conversions": "1",
        "spend_usd": spend,
        "spend_local": "12.3400",
        "ltv_usd": "0.5000",
    }


@pytest.mark.parametrize(
    ("inputs", "metrics"),
    [
        # impressions, clicks, installs, spend  ->  cpi, cpc, cpm, ctr, icr, ipm
        (("1000", "10", "5", "9.9900"), ("1.998", "0.999", "9.99", "0.01", "0.5", "5")),
        (("3", "3", "3", "1.0000"), ("0.333333", "0.333333", "333.333333", "1", "1", "1000")),  # 1/3
        (("3", "3", "3", "2.0000"), ("0.666667", "0.666667", "666.666667", "1", "1", "1000")),  # 2/3 half-up
        (("2000000", "1", "1", "0"), ("0", "0", "0", "0.000001", "1", "0.0005")),  # 0.0000005 -> 0.000001
        (("3", "3", "3", "0.0000015"), ("0.000001", "0.000001", "0.0005", "1", "1", "1000")),
        (("0", "10", "5", "9.99"), ("1.998", "0.999", "", "", "0.5", "")),  # zero impressions
        (("1000", "0", "5", "9.99"), ("1.998", "", "9.99", "0", "", "5")),  # zero clicks
        (("1000", "10", "0", "9.99"), ("", "0.999", "9.99", "0.01", "0", "0")),  # zero installs
        (("1000", "10", "5", None), ("", "", "", "0.01", "0.5", "5")),  # NULL spend
        (("0", "0", "0", "0"), ("", "", "", "", "", "")),
        ((None, None, None, None), ("", "", "", "", "", "")),
    ],
)
def test_campaign_derived_metrics(inputs: tuple[str | None, ...], metrics: tuple[str, ...]) -> None:
    impressions, clicks, installs, spend = inputs
    out = run(CAMPAIGN_PERFORMANCE, [campaign_row(impressions, clicks, installs, spend)])
    rendered_spend = {"9.9900": "9.99", "1.0000": "1", "2.0000": "2"}.get(spend or "", spend or "")
    expected = {
        **CAMPAIGN,
        "impressions": impressions or "",
        "clicks": clicks or "",
        "installs": installs or "",
        "conversions": "1",
        "spend_usd": rendered_spend,
        "spend_local": "12.34",
        "ltv_usd": "0.5",
        **dict(zip(METRICS, metrics, strict=True)),
    }
    assert out == header(CAMPAIGN_PERFORMANCE) + line(CAMPAIGN_PERFORMANCE, expected)


def test_campaign_exact_bytes() -> None:
    out = run(CAMPAIGN_PERFORMANCE, [campaign_row("1000", "10", "5", "9.9900")])
    assert out == (
        b"campaign_id,campaign_name,adset_id,adset_name,ad_id,ad_name,platform,date,impressions,clicks,installs,"
        b"conversions,spend_usd,spend_local,cpi_usd,cpc_usd,cpm_usd,ctr,icr,ipm,ltv_usd\r\n"
        b"c1,Spring,as1,Adset,ad1,Ad,Meta,2026-03-07,1000,10,5,1,9.99,12.34,1.998,0.999,9.99,0.01,0.5,5,0.5\r\n"
    )


# -- attributes column ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [EVENTS, PAYWALL_VISITS, UA_EVENTS], ids=lambda s: s.name)
def test_attributes_appended_only_when_asked(spec: TableSpec) -> None:
    rows = [{"profile_id": "p1", "attributes": '{"plan": "pro"}'}, {"profile_id": "p2", "attributes": None}]
    with_attrs = run(spec, rows, ShapeOptions(with_attributes=True))
    assert with_attrs == (
        header(spec, with_attributes=True)
        + line(spec, {"profile_id": "p1", "attributes": '"{""plan"":""pro""}"'}, with_attributes=True)
        + line(spec, {"profile_id": "p2"}, with_attributes=True)
    )
    without = run(spec, rows)
    assert without == header(spec) + line(spec, {"profile_id": "p1"}) + line(spec, {"profile_id": "p2"})
    assert spec.header(with_attributes=True)[:-1] == spec.header(with_attributes=False)


def test_sql_returning_wrong_columns_is_an_error() -> None:
    # A column the table needs is missing from the SQL's result: the error names it. (pyarrow raises
    # before open_chunks' own "the SQL returns columns" check runs, hence KeyError as well as ValueError.)
    data = b"profile_id,store\r\np,app_store\r\n"
    with pytest.raises((ValueError, KeyError), match="customer_user_id"):
        transform(PAYWALL_VISITS, data)


# -- property: arbitrary text and decimals round-trip ------------------------------------------

# Any text PostgreSQL can store (no NUL), with CSV's special characters drawn often.
TEXT = st.text(
    st.one_of(
        st.sampled_from([",", '"', "\r", "\n", " ", "=", "\t", "😀", "é"]),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    max_size=40,
)
DECIMALS = st.integers(min_value=0, max_value=4).flatmap(
    lambda places: st.decimals(
        min_value=Decimal("-999999999999.9999"),
        max_value=Decimal("999999999999.9999"),
        places=places,
        allow_nan=False,
        allow_infinity=False,
    )
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(TEXT, DECIMALS, st.booleans()), min_size=1, max_size=8),
)
def test_text_and_decimals_round_trip(rows: list[tuple[str, Decimal, bool]]) -> None:
    # Intermediate written by Python's csv module (quotes only where needed, empty text as empty).
    names = source_columns(CAMPAIGN_PERFORMANCE)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator=CRLF)
    writer.writerow(names)
    for text, number, pad in rows:
        # numeric(18,4) renders with the column's scale; SQLite renders the shortest form.
        rendered = format(number.quantize(Decimal("0.0001")) if pad else number, "f")
        writer.writerow([{"campaign_name": text, "ltv_usd": rendered}.get(n, "1") for n in names])
    out = transform(CAMPAIGN_PERFORMANCE, buf.getvalue().encode("utf-8"))
    header_names = CAMPAIGN_PERFORMANCE.column_names
    name_at, ltv_at = header_names.index("campaign_name"), header_names.index("ltv_usd")

    parsed = list(csv.reader(io.StringIO(out.decode("utf-8"), newline="")))
    assert parsed[0] == header_names
    assert [r[name_at] for r in parsed[1:]] == [text for text, _, _ in rows]
    assert [Decimal(r[ltv_at]) for r in parsed[1:]] == [number for _, number, _ in rows]
    for r in parsed[1:]:
        assert "e" not in r[ltv_at].lower()
        assert r[ltv_at] == "0" or not r[ltv_at].rstrip("0").endswith(".")

    frame = pd.read_csv(io.BytesIO(out), dtype=str, keep_default_na=False)
    assert list(frame.columns) == header_names
    assert frame["campaign_name"].tolist() == [text for text, _, _ in rows]
    assert [Decimal(v) for v in frame["ltv_usd"]] == [number for _, number, _ in rows]


# Integers of the bigint columns, any size, and NULL.
BIGINTS = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1))
# Python floats with at most 4 decimals (14 significant digits, so repr() is that decimal), as a
# client binds them into numeric(18,4): the column stores the decimal the float's repr() spells.
FLOATS = st.decimals(
    min_value=Decimal("-9999999999.9999"), max_value=Decimal("9999999999.9999"), places=4, allow_nan=False
).map(float)


def numeric_18_4(value: float) -> str:
    """How PostgreSQL renders a float bound into numeric(18,4): the float's repr at the column's scale."""
    return format(Decimal(repr(value)).quantize(Decimal("0.0001")), "f")


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(TEXT, BIGINTS, FLOATS, DECIMALS), min_size=1, max_size=8))
def test_integers_and_floats_stored_as_numeric_round_trip(rows: list[tuple[str, int | None, float, Decimal]]) -> None:
    names = source_columns(CAMPAIGN_PERFORMANCE)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator=CRLF)
    writer.writerow(names)
    for text, count, amount, exact in rows:
        values = {
            "campaign_name": text,
            "impressions": "" if count is None else str(count),
            "spend_usd": numeric_18_4(amount),
            "spend_local": format(exact, "f"),
        }
        writer.writerow([values.get(n, "1") for n in names])
    out = transform(CAMPAIGN_PERFORMANCE, buf.getvalue().encode("utf-8"))

    # Python's csv module: exact text, integers without '.0', decimals without noise or exponent.
    parsed = [dict(zip(CAMPAIGN_PERFORMANCE.column_names, r, strict=True)) for r in _records(out)[1:]]
    assert [r["campaign_name"] for r in parsed] == [text for text, *_ in rows]
    assert [r["impressions"] for r in parsed] == ["" if c is None else str(c) for _, c, _, _ in rows]
    assert [float(r["spend_usd"]) for r in parsed] == [amount for _, _, amount, _ in rows]
    assert [Decimal(r["spend_usd"]) for r in parsed] == [Decimal(repr(a)) for _, _, a, _ in rows]
    assert [Decimal(r["spend_local"]) for r in parsed] == [exact for *_, exact in rows]
    for r in parsed:
        for column in ("spend_usd", "spend_local"):
            value = r[column]
            assert "e" not in value.lower() and ("." not in value or not value.endswith(("0", "."))), r

    # pandas: text as text; integers as int64 (as text when NULLs make the column float); floats exactly.
    frame = pd.read_csv(
        io.BytesIO(out), keep_default_na=False, dtype={"campaign_name": str}, float_precision="round_trip"
    )
    assert frame["campaign_name"].tolist() == [text for text, *_ in rows]
    counts = [c for _, c, _, _ in rows]
    if None not in counts and all(abs(c) < 2**53 for c in counts):
        numbers = pd.read_csv(io.BytesIO(out), usecols=["impressions"])["impressions"]
        assert numbers.dtype.kind == "i" and numbers.tolist() == counts
    assert pd.read_csv(io.BytesIO(out), usecols=["spend_usd"], float_precision="round_trip")["spend_usd"].tolist() == [
        amount for _, _, amount, _ in rows
    ]
    as_text = pd.read_csv(io.BytesIO(out), dtype=str, keep_default_na=False)
    assert as_text["impressions"].tolist() == ["" if c is None else str(c) for c in counts]


def _records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_shape_gives_pyarrow_backed_text_columns_sharing_the_chunks_buffers() -> None:
    """The shaped chunk is a DataFrame of ``pd.ArrowDtype`` text columns; columns passed through as
    stored are the parsed chunk's own Arrow buffers, not copies."""
    row = {"profile_id": "p1", "event_type": "TRIAL_STARTED", "revenue_usd": "9.9900", "device": "iPhone"}
    batch = next(open_chunks(io.BytesIO(intermediate(EVENTS, [row])), source_columns(EVENTS)))
    frame = shape(batch, EVENTS, ShapeOptions())
    assert list(frame.columns) == EVENTS.column_names
    assert {str(t) for t in frame.dtypes} == {"string[pyarrow]"}
    assert all(isinstance(t, pd.ArrowDtype) for t in frame.dtypes)
    shared = pa.array(frame["device"]).buffers()[2]  # through __arrow_array__: the data as it is
    assert shared.address == batch.column("device").buffers()[2].address
    assert frame.loc[0, "event_type"] == "trial_started" and frame.loc[0, "revenue_usd"] == "9.99"


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.text()
JSON_DOCS = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(doc=JSON_DOCS, fraction=st.none() | st.decimals(allow_nan=False, allow_infinity=False), ascii_only=st.booleans())
def test_json_fast_path_writes_what_the_exact_writer_writes(doc, fraction, ascii_only: bool) -> None:
    """normalize_json hands documents without fractions to the C encoder; with a fraction, to the
    exact Decimal writer. Either way the bytes equal the exact writer's on the same document."""
    import json

    from subscription_exports.transform import _dump_json, normalize_json

    text = json.dumps(doc, ensure_ascii=ascii_only, indent=None if ascii_only else 1)
    if fraction is not None:
        text = "[" + text + "," + format(fraction, "f") + ("" if "." in format(fraction, "f") else ".0") + "]"
    exact = json.loads(text, parse_float=Decimal)
    assert normalize_json(text) == (None if exact is None else _dump_json(exact))


def test_json_column_is_normalised_then_quoted_by_the_encoder() -> None:
    from subscription_exports.transform import TEXT, render_json

    values = pd.Series(
        ['{"b": 1, "a": "x,y"}', None, '{"n": 12345678901234567.890}', "7", '"plain"', "null"], dtype=TEXT
    )
    rendered = render_json(values)
    assert rendered.dtype == TEXT
    assert rendered.tolist() == ['{"a":"x,y","b":1}', pd.NA, '{"n":12345678901234567.890}', "7", '"plain"', pd.NA]
    assert encode_rows(rendered.to_frame()).split(b"\r\n")[:-1] == [
        b'"{""a"":""x,y"",""b"":1}"',
        b"",
        b'"{""n"":12345678901234567.890}"',
        b"7",
        b'"""plain"""',
        b"",
    ]


@pytest.mark.parametrize("malformed", ["2026-3-7 1:02:03+00", "infinity", "2026-03-07 01:02:03.1234567+00"])
def test_a_timestamp_not_in_a_source_form_fails_rather_than_render_garbage(malformed: str) -> None:
    from subscription_exports.transform import TEXT, render_timestamp

    with pytest.raises(pa.ArrowInvalid):
        render_timestamp(pd.Series(["2026-03-07 01:02:03.5+00", malformed], dtype=TEXT))


NUMERIC_TEXT = st.one_of(
    st.decimals(min_value=-(10**14), max_value=10**14, places=4, allow_nan=False).map(lambda d: f"{d:.4f}"),
    st.sampled_from(["0.0000", "-0.0000", "10.0000", "-10.5000", "100", "-0", "1.5", ".0000", "..0000", "a.0000",
                     "1.00000", "0.000", "", "9.9900", "12345678901234.0001"]),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), NUMERIC_TEXT), min_size=1, max_size=12), st.integers(0, 3))
def test_decimals_byte_wise_match_plain_python(values: list[str | None], start: int) -> None:
    """``render_decimal`` (the trims without a search for a point, for numeric(18,4) text, and
    with it) against Python's own rstrip, on slices of mixed chunks, NULLs and near-misses."""
    from subscription_exports.transform import render_decimal

    def plain(value: str | None) -> str | None:
        if value is None:
            return None
        trimmed = value.rstrip("0").rstrip(".") if "." in value else value
        return "0" if trimmed == "-0" else trimmed

    half = len(values) // 2
    chunked = pa.chunked_array([pa.array(values[:half], pa.string()), pa.array(values[half:], pa.string())])
    sliced = chunked.slice(min(start, len(values)))
    rendered = render_decimal(pd.Series(pd.arrays.ArrowExtensionArray(sliced)))
    assert [None if v is pd.NA else v for v in rendered.tolist()] == [plain(v) for v in sliced.to_pylist()]


def test_four_place_decimals_skip_the_search_for_a_point_and_others_do_not() -> None:
    from subscription_exports.transform import hold_a_point

    assert hold_a_point(pa.array(["9.9900", None, "10.0000", "-1.5000", "0.0001", "", "-0.0000"]))
    assert hold_a_point(pa.array(["9.9900", "10.0000", "123.4560"]).slice(1))
    assert hold_a_point(pa.array([None, ""], pa.string()))
    for other in (["100"], ["1.50"], ["10.0000", "10"], ["1.00000"], ["1234"], ["12345"], ["12.345"]):
        assert not hold_a_point(pa.array(other)), other


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), NUMERIC_TEXT), min_size=1, max_size=12), st.integers(0, 3))
def test_a_column_said_to_hold_a_point_holds_one_in_every_value(values: list[str | None], start: int) -> None:
    """``hold_a_point`` lets ``render_decimal`` trim without looking for a point: where it says
    every value holds one, each non-empty value does (else '100' would be trimmed to '1')."""
    from subscription_exports.transform import hold_a_point

    text = pa.array(values, pa.string()).slice(min(start, len(values)))
    if hold_a_point(text):
        assert all("." in v for v in text.to_pylist() if v)


def test_output_quoting_names_only_columns_that_can_need_quotes() -> None:
    # Only the named columns are scanned for values to quote. In a plain group (no source value
    # holds a comma, quote, CR or LF) that is JSON (written anew) and event types renamed to text
    # with such a character; otherwise also the columns whose source values hold one, except
    # timestamps, written from digits only.
    kinds = [column.kind for column in EVENTS.columns]
    names = [column.name for column in EVENTS.columns]
    plain = output_quoting(EVENTS, ShapeOptions())
    assert plain == [False] * len(kinds)
    assert output_quoting(EVENTS, ShapeOptions(), dict.fromkeys(source_columns(EVENTS), False)) == plain
    with_attributes = output_quoting(EVENTS, ShapeOptions(with_attributes=True))
    assert with_attributes == [False] * len(kinds) + [True]
    renamed = output_quoting(EVENTS, ShapeOptions(rename_event_types={"trial_started": "trial, started"}))
    assert renamed == [kind is Kind.EVENT_TYPE for kind in kinds] and any(renamed)
    safe_rename = output_quoting(EVENTS, ShapeOptions(rename_event_types={"trial_started": "TrialStarted"}))
    assert safe_rename == plain
    every = output_quoting(EVENTS, ShapeOptions(), dict.fromkeys(source_columns(EVENTS), True))
    assert every == [kind is not Kind.TIMESTAMP for kind in kinds]
    some = output_quoting(EVENTS, ShapeOptions(), {"device": True, "revenue_usd": True, "event_datetime": True})
    assert [name for name, quote in zip(names, some, strict=True) if quote] == ["revenue_usd", "device"]


def test_a_plain_group_renamed_to_a_comma_is_quoted() -> None:
    batch = pa.table({name: pa.array(["x"] * 3, pa.string()) for name in source_columns(EVENTS)})
    batch = batch.set_column(
        batch.column_names.index("event_type"), "event_type", pa.array(["TRIAL_STARTED", "a", None], pa.string())
    )
    for name in ("event_datetime", "subscription_expires_at", "install_date"):
        batch = batch.set_column(batch.column_names.index(name), name, pa.array(["2026-03-07 12:34:56.1+00"] * 3))
    for column in EVENTS.columns:
        if column.kind is Kind.DECIMAL:
            batch = batch.set_column(batch.column_names.index(column.name), column.name, pa.array(["9.9900"] * 3))
    options = ShapeOptions(rename_event_types={"trial_started": "trial, started"})
    columns = shape_columns(batch, EVENTS, options)
    planned = b"".join(map(bytes, encode_shaped(columns, quoting=output_quoting(EVENTS, options))))
    assert planned == b"".join(map(bytes, encode_shaped(columns)))
    assert b'"trial, started"' in planned


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.none() | st.text(alphabet=st.sampled_from(list(',"\r\nab é😀')), max_size=6), max_size=40),
    start=st.integers(0, 5),
    cut=st.integers(0, 5),
)
def test_values_to_quote_finds_exactly_the_values_holding_a_special(values, start, cut) -> None:
    # The byte-wise search maps each comma, quote, CR or LF to its value through the offsets: empty,
    # null and adjacent values, and slices (offsets not from 0), each against Python.
    array = pa.array(values, pa.string())
    piece = array.slice(min(start, len(values)), max(len(values) - start - cut, 0))
    expected = [v is not None and any(c in v for c in ',"\r\n') for v in piece.to_pylist()]
    assert values_to_quote(piece).tolist() == expected


HOSTILE_TEXT = st.none() | st.text(alphabet=st.sampled_from(list(',"\r\nab é😀')), max_size=5)


def csv_field(value: str | None) -> str:
    """RFC 4180 minimal quoting, spelled out: the reference for the encoder's two quoting paths."""
    if value is None:
        return ""
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\r\n') else value


@pytest.mark.parametrize("path", ["whole rows rewritten", "column by column"])
@settings(max_examples=200, deadline=None)
@given(
    table=st.integers(2, 5).flatmap(
        lambda width: st.lists(
            st.lists(HOSTILE_TEXT | st.just("plain"), min_size=width, max_size=width), min_size=1, max_size=30
        )
    ),
    cut=st.integers(0, 30),
)
def test_both_quoting_paths_write_every_row_as_the_rules_say(path: str, table, cut: int) -> None:
    """``encode_columns`` quotes the few rows that need it by rewriting them whole (Python's ``csv``)
    between unquoted lines, and many such rows column by column; each path alone, on chunked
    columns, against the rule spelled out per value (and against Python's ``csv`` as a whole)."""
    from subscription_exports import transform

    cut = min(cut, len(table))
    columns = [pa.chunked_array([pa.array([row[i] for row in table[:cut]], pa.string()),
                                 pa.array([row[i] for row in table[cut:]], pa.string())])
               for i in range(len(table[0]))]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transform, "PATCHED_ROWS_PER_COLUMN", 10**6 if path == "whole rows rewritten" else 0)
        written = b"".join(map(bytes, transform.encode_columns(columns)))
    assert written == "".join(",".join(map(csv_field, row)) + "\r\n" for row in table).encode()
    assert written == python_csv(table)


@pytest.mark.parametrize("hostile_rows", [1, 3, 30])
def test_few_rows_to_quote_are_rewritten_whole_and_many_column_by_column(monkeypatch, hostile_rows: int) -> None:
    """Which path a group takes: up to PATCHED_ROWS_PER_COLUMN rows per column that needs quoting
    are rewritten whole; more are quoted column by column. The bytes are the same either way."""
    from subscription_exports import transform

    calls = []
    real = transform.patched_lines
    monkeypatch.setattr(transform, "patched_lines", lambda *a: calls.append(a[2].tolist()) or real(*a))
    table = [["p", 'a,"b"' if i < hostile_rows else "plain", str(i)] for i in range(30)]
    columns = [pa.chunked_array([pa.array([row[i] for row in table])]) for i in range(3)]
    written = b"".join(map(bytes, transform.encode_columns(columns)))
    assert written == python_csv(table)
    assert calls == ([list(range(hostile_rows))] if hostile_rows <= transform.PATCHED_ROWS_PER_COLUMN else [])

"""The boundary between a destination's own pandas step and the file, as properties (hypothesis).

1. Whatever text a step returns, in any accepted text dtype (``pd.ArrowDtype`` string and
   large_string, pandas' ``string``/``str`` dtypes of either storage, ``object`` of ``str``), with
   any missing-value marker (``None``, ``NaN``, ``pd.NA``, ``NaT``), filtered or empty, the encoded
   rows are exactly what Python's ``csv`` writer writes for the same values (RFC 4180 minimal
   quoting, CRLF, a missing value as an empty field). A step that turns text into numbers must not
   change what the file says: it is refused, never written as pandas renders the numbers (today's
   code wrote ``1.23456789011234e+10`` for ``12345678901.1234``).
2. Every non-text dtype pandas produces is refused with one line naming the destination, the step,
   the column and its dtype.

The step boundary is ``custom_transform.apply`` followed by ``transform.encode_rows``, the two
calls the exporter makes per chunk (tests/test_transform_step_system.py runs the same properties
through the exporter, the store and the manifest).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subscription_exports.custom_transform import TransformError, apply, takes_connection
from subscription_exports.tables import EVENTS
from subscription_exports.transform import TEXT, encode_rows

STEP = "my_steps.money:as_numbers"
DEST = "acme-ios"
HINT = "format it yourself (e.g. .astype(str)) so the file says exactly what you mean"

# Hostile text: the four CSV specials (CR and LF alone and as CRLF), spaces, a leading '=',
# multi-byte characters, the empty string, and anything else Unicode holds (no NUL: PostgreSQL
# text cannot hold it, so no source value does).
TEXT_VALUES = st.lists(
    st.one_of(
        st.sampled_from([",", '"', "\r", "\n", "\r\n", " ", "=", "é", "😀", "中", "\u2028"]),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    max_size=10,
).map("".join)
MISSING_MARKERS = st.sampled_from([None, np.nan, pd.NA, pd.NaT])
CELLS = st.one_of(TEXT_VALUES, MISSING_MARKERS)

# Every dtype a step may return text in.
TEXT_DTYPES: dict[str, Any] = {
    "string[pyarrow] (ArrowDtype)": pd.ArrowDtype(pa.string()),
    "large_string[pyarrow]": pd.ArrowDtype(pa.large_string()),
    "string (python)": pd.StringDtype("python"),
    "string (pyarrow)": pd.StringDtype("pyarrow"),
    "str (python, NaN)": pd.StringDtype("python", na_value=np.nan),
    "str (pyarrow, NaN)": pd.StringDtype("pyarrow", na_value=np.nan),
    "object": object,
}


def is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value))


def python_csv(rows: list[list[Any]]) -> bytes:
    """The reference: Python's csv writer, minimal quoting, CRLF; a missing value is an empty field."""
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows([["" if is_missing(v) else v for v in row] for row in rows])
    return buf.getvalue().encode("utf-8")


def as_dtype(values: list[Any], dtype: Any, index: pd.Index) -> pd.Series:
    """A column of ``values`` in ``dtype``, as a step would build it (object keeps each marker as it is)."""
    if dtype is object:
        return pd.Series(np.array(values, dtype=object), index=index, dtype=object)
    return pd.Series([None if is_missing(v) else v for v in values], index=index, dtype=dtype)


def shaped(columns: list[str], rows: list[list[Any]]) -> pd.DataFrame:
    """A chunk as ``transform.shape`` hands it to the step: every column ``string[pyarrow]``."""
    data = {
        name: pd.array([None if is_missing(r[i]) else r[i] for r in rows], dtype=TEXT) for i, name in enumerate(columns)
    }
    return pd.DataFrame(data, columns=columns)


@st.composite
def chunks(draw: st.DrawFn, min_columns: int = 2) -> tuple[list[str], list[list[Any]]]:
    width = draw(st.integers(min_columns, 5))
    columns = [f"c{i}" for i in range(width)]
    rows = draw(st.lists(st.lists(CELLS, min_size=width, max_size=width), max_size=8))
    return columns, rows


DECIMAL_TEXT = st.from_regex(r"\A-?[0-9]{1,12}(\.[0-9]{1,6})?\Z")


@st.composite
def steps(draw: st.DrawFn) -> tuple[str, list[str], list[list[Any]], Callable[[pd.DataFrame], pd.DataFrame], list]:
    """(kind, columns, rows, step, the rows the step means to write)."""
    kind = draw(st.sampled_from(["as text dtypes", "filter rows", "empty frame", "numbers"]))
    columns, rows = draw(chunks())
    dtypes = [TEXT_DTYPES[draw(st.sampled_from(sorted(TEXT_DTYPES)))] for _ in columns]
    keep = draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    if kind == "numbers":
        # A column of decimal text (as money columns hold it) that the step turns into numbers.
        numbers = draw(st.lists(DECIMAL_TEXT, min_size=len(rows), max_size=len(rows)))
        rows = [[n, *row[1:]] for n, row in zip(numbers, rows, strict=True)]

    def step(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(
            {name: as_dtype([r[i] for r in rows], dtypes[i], frame.index) for i, name in enumerate(columns)}
        )
        if kind == "filter rows":
            return out.iloc[[i for i, k in enumerate(keep) if k]]
        if kind == "empty frame":
            return out.iloc[0:0]
        if kind == "numbers":
            return frame.assign(c0=pd.to_numeric(frame["c0"]))
        return out

    meant = {"filter rows": [r for r, k in zip(rows, keep, strict=True) if k], "empty frame": []}.get(kind, rows)
    return kind, columns, rows, step, meant


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps())
def test_what_a_step_returns_is_written_exactly_as_python_csv_writes_it(example) -> None:
    kind, columns, rows, step, meant = example
    try:
        out = apply(step, shaped(columns, rows), destination=DEST, spec=STEP)
    except TransformError as refused:
        # Only a step that does not return text may be refused, and then with the one-line cause.
        assert kind == "numbers", f"a step returning text was refused: {refused}"
        dtype = str(pd.to_numeric(shaped(columns, rows)["c0"]).dtype)
        assert (
            str(refused)
            == f"transform '{STEP}' of destination '{DEST}' returned column 'c0' as {dtype}, not text: {HINT}"
        )
        return
    assert encode_rows(out) == python_csv(meant)
    assert len(out) == len(meant)


def test_the_issues_step_is_refused_naming_destination_step_column_and_dtype() -> None:
    # The step of the report, on a real events chunk: revenue_usd as the source wrote it.
    row = dict.fromkeys(EVENTS.header(with_attributes=False), "x")
    row["revenue_usd"] = "12345678901.1234"
    frame = pd.DataFrame({k: pd.array([v], dtype=TEXT) for k, v in row.items()})

    def money_as_numbers(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(revenue_usd=pd.to_numeric(frame["revenue_usd"], errors="coerce"))

    with pytest.raises(TransformError) as refused:
        apply(money_as_numbers, frame, destination=DEST, spec=STEP)
    assert str(refused.value) == (
        "transform 'my_steps.money:as_numbers' of destination 'acme-ios' returned column 'revenue_usd' as "
        "double[pyarrow], not text: format it yourself (e.g. .astype(str)) so the file says exactly what you mean"
    )


@pytest.mark.parametrize(
    ("step", "written"),
    [
        # '""' stays empty, '007' and '0.010' stay as they are, whatever missing marker a step uses
        (lambda f: f.assign(a=f["a"].replace("", None)), b"007,0.010\r\n,x\r\n"),
        (lambda f: f.assign(a=f["a"].astype(object).where(f["a"] != "", np.nan)), b"007,0.010\r\n,x\r\n"),
        (lambda f: f.astype(str), b"007,0.010\r\n,x\r\n"),  # pandas 3: `str` keeps a missing value missing
        (lambda f: f.astype("string"), b"007,0.010\r\n,x\r\n"),
        (lambda f: f.astype(object), b"007,0.010\r\n,x\r\n"),
        (lambda f: f.assign(b=f["b"].str.upper()), b"007,0.010\r\n,X\r\n"),
        (lambda f: f.replace("", np.nan), b"007,0.010\r\n,x\r\n"),
        (lambda f: f.mask(f == ""), b"007,0.010\r\n,x\r\n"),
    ],
    ids=[
        "replace-None",
        "where-NaN",
        "astype-str",
        "astype-string",
        "astype-object",
        "str-upper",
        "replace-NaN",
        "mask",
    ],
)
def test_common_pandas_steps_keep_the_text(step, written: bytes) -> None:
    frame = pd.DataFrame({"a": pd.array(["007", ""], dtype=TEXT), "b": pd.array(["0.010", "x"], dtype=TEXT)})
    assert encode_rows(apply(step, frame, destination=DEST, spec=STEP)) == written


# -- 2. every non-text dtype is refused ------------------------------------------------------------

INTS = st.lists(st.integers(-(2**31), 2**31), min_size=1, max_size=6)
DAY = dt.datetime(2026, 3, 7, 12, 34, 56)

# name -> (values -> column, how the one-line cause names its dtype)
NON_TEXT: dict[str, tuple[Callable[[list[int]], pd.Series], str]] = {
    "int64": (lambda v: pd.Series(v, dtype="int64"), "int64"),
    "uint8": (lambda v: pd.Series([x % 256 for x in v], dtype="uint8"), "uint8"),
    "Int64": (lambda v: pd.Series(v[:1] + [None] * (len(v) > 1) + v[1:-1], dtype="Int64"), "Int64"),
    "int64[pyarrow]": (lambda v: pd.Series(v, dtype="int64[pyarrow]"), "int64[pyarrow]"),
    "float64": (lambda v: pd.Series([x / 7 for x in v], dtype="float64"), "float64"),
    "float64 one value": (lambda v: pd.Series([v[0] / 7] + [np.nan] * (len(v) - 1), dtype="float64"), "float64"),
    "float32": (lambda v: pd.Series([x / 8 for x in v], dtype="float32"), "float32"),
    "Float64": (lambda v: pd.Series([x / 4 for x in v], dtype="Float64"), "Float64"),
    "double[pyarrow]": (lambda v: pd.Series([x / 3 for x in v], dtype="double[pyarrow]"), "double[pyarrow]"),
    "bool": (lambda v: pd.Series([x % 2 == 0 for x in v], dtype="bool"), "bool"),
    "boolean": (lambda v: pd.Series([x % 2 == 0 for x in v], dtype="boolean"), "boolean"),
    "bool[pyarrow]": (lambda v: pd.Series([x % 2 == 0 for x in v], dtype="bool[pyarrow]"), "bool[pyarrow]"),
    "datetime64[ns]": (lambda v: pd.Series([DAY + dt.timedelta(seconds=x) for x in v], dtype="datetime64[ns]"),
                       "datetime64[ns]"),
    "datetime64[us, UTC]": (lambda v: pd.Series([DAY + dt.timedelta(seconds=x) for x in v]).dt.tz_localize("UTC")
                            .astype("datetime64[us, UTC]"), "datetime64[us, UTC]"),
    "timestamp[us][pyarrow]": (lambda v: pd.Series([DAY + dt.timedelta(seconds=x) for x in v],
                                                   dtype=pd.ArrowDtype(pa.timestamp("us"))), "timestamp[us][pyarrow]"),
    "timestamp[us, tz=UTC][pyarrow]": (lambda v: pd.Series([DAY + dt.timedelta(seconds=x) for x in v],
                                                           dtype=pd.ArrowDtype(pa.timestamp("us", "UTC"))),
                                       "timestamp[us, tz=UTC][pyarrow]"),
    "date32[pyarrow]": (lambda v: pd.Series([DAY.date()] * len(v), dtype=pd.ArrowDtype(pa.date32())),
                        "date32[day][pyarrow]"),
    "timedelta64[ns]": (lambda v: pd.Series([dt.timedelta(seconds=x) for x in v], dtype="timedelta64[ns]"),
                        "timedelta64[ns]"),
    "duration[us][pyarrow]": (lambda v: pd.Series([dt.timedelta(seconds=x) for x in v],
                                                  dtype=pd.ArrowDtype(pa.duration("us"))), "duration[us][pyarrow]"),
    "category of text": (lambda v: pd.Series([str(x) for x in v], dtype="category"), "category"),
    "category of ints": (lambda v: pd.Series(v, dtype="category"), "category"),
    "decimal128[pyarrow]": (lambda v: pd.Series([Decimal(x).scaleb(-4) for x in v],
                                                dtype=pd.ArrowDtype(pa.decimal128(18, 4))),
                            "decimal128(18, 4)[pyarrow]"),
    "dictionary[pyarrow]": (lambda v: pd.Series(pd.arrays.ArrowExtensionArray(
        pa.array([str(x) for x in v]).dictionary_encode())),
        "dictionary<values=string, indices=int32, ordered=0>[pyarrow]"),
    "binary[pyarrow]": (lambda v: pd.Series([str(x).encode() for x in v], dtype=pd.ArrowDtype(pa.binary())),
                        "binary[pyarrow]"),
    "period[D]": (lambda v: pd.Series(pd.period_range("2026-03-07", periods=len(v), freq="D")), "period[D]"),
    "interval": (lambda v: pd.Series(pd.interval_range(0, len(v))), "interval[int64, right]"),
    "complex128": (lambda v: pd.Series([complex(x, 1) for x in v]), "complex128"),
    "object of Decimal": (lambda v: pd.Series([Decimal(x).scaleb(-4) for x in v], dtype=object),
                          "object holding Decimal"),
    "object of int": (lambda v: pd.Series(v, dtype=object), "object holding int"),
    "object of float": (lambda v: pd.Series([x + 0.5 for x in v], dtype=object), "object holding float"),
    "object of bool": (lambda v: pd.Series([x > 0 for x in v], dtype=object), "object holding bool"),
    "object of bytes": (lambda v: pd.Series([str(x).encode() for x in v], dtype=object), "object holding bytes"),
    "object of date": (lambda v: pd.Series([DAY.date()] * len(v), dtype=object), "object holding date"),
    "object of Timestamp": (lambda v: pd.Series([pd.Timestamp(DAY)] * len(v), dtype=object),
                            "object holding Timestamp"),
    "object of str and int": (lambda v: pd.Series([*v, "text"], dtype=object), "object holding int"),
}  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(sorted(NON_TEXT)),
    values=INTS,
    width=st.integers(1, 4),
    at=st.integers(0, 3),
    filtered=st.booleans(),
)
def test_every_non_text_dtype_is_refused_with_one_line(
    kind: str, values: list[int], width: int, at: int, filtered
) -> None:
    build, shown = NON_TEXT[kind]
    column = build(values)
    names = [f"c{i}" for i in range(width)]
    name = names[at % width]
    frame = pd.DataFrame({n: pd.array(["v"] * len(column), dtype=TEXT) for n in names})

    def step(chunk: pd.DataFrame) -> pd.DataFrame:
        out = chunk.assign(**{name: column.set_axis(chunk.index)})  # the column as built, dtype kept
        return out.iloc[:1] if filtered else out

    with pytest.raises(TransformError) as refused:
        apply(step, frame, destination=DEST, spec=STEP)
    message = str(refused.value)
    assert (
        message == f"transform '{STEP}' of destination '{DEST}' returned column '{name}' as {shown}, not text: {HINT}"
    )
    assert "\n" not in message


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(sorted(NON_TEXT)), values=INTS, rows=st.integers(0, 3), filtered=st.booleans())
def test_a_column_with_no_value_is_empty_fields_whatever_its_dtype(kind: str, values: list[int], rows, filtered):
    # Every non-text dtype, with no row at all or missing in every row (what pandas gives a column
    # that had no value to begin with): nothing it could say is lost, so it is written as empty fields.
    build, _ = NON_TEXT[kind]
    built = build(values)
    column = built.iloc[:0]
    if rows:
        column = built.reindex(range(len(built), len(built) + rows))  # past its end: every value missing
        if kind.startswith("object"):
            column = column.astype(object)
    frame = pd.DataFrame({"a": pd.array(["x,y"] * rows, dtype=TEXT), "b": pd.array(["v"] * rows, dtype=TEXT)})

    def step(chunk: pd.DataFrame) -> pd.DataFrame:
        out = chunk.assign(b=column.set_axis(chunk.index))
        return out.iloc[:1] if filtered else out

    out = apply(step, frame, destination=DEST, spec=STEP)
    written = min(rows, 1) if filtered else rows
    assert encode_rows(out) == python_csv([["x,y", None]] * written)
    assert [str(d) for d in out.dtypes] == ["string[pyarrow]", "string[pyarrow]"]


# -- 3. steps written the ways pandas users write them, on chunks as real apps give them ---------

# Element-wise rewrites of one column: (the step's pandas, the same rewrite of one present value in
# plain Python). A missing value stays missing, except where the rewrite fills it (``MISSING`` in).
MISSING = object()
ELEMENTWISE: dict[str, tuple[Callable[[pd.Series], pd.Series], Callable[[Any], Any]]] = {
    "map": (lambda s: s.map(lambda v: v + "#", na_action="ignore"), lambda v: v + "#"),
    "map sha256": (lambda s: s.map(lambda v: hashlib.sha256(v.encode()).hexdigest(), na_action="ignore"),
                   lambda v: hashlib.sha256(v.encode()).hexdigest()),
    "apply": (lambda s: s.apply(lambda v: v[::-1] if isinstance(v, str) else v), lambda v: v[::-1]),
    "where": (lambda s: s.where(s.fillna("").str.len() > 1), lambda v: v if len(v) > 1 else MISSING),
    "mask": (lambda s: s.mask(s == ""), lambda v: MISSING if v == "" else v),
    "fillna": (lambda s: s.fillna("-"), lambda v: "-" if v is MISSING else v),
    "replace": (lambda s: s.replace("", None), lambda v: MISSING if v == "" else v),
    "str.slice": (lambda s: s.str.slice(0, 3), lambda v: v[:3]),
    "str.replace": (lambda s: s.str.replace(",", ";", regex=False), lambda v: v.replace(",", ";")),
    "astype string": (lambda s: s.astype("string"), lambda v: v),
    "astype object": (lambda s: s.astype(object), lambda v: v),
    "all NaN": (lambda s: pd.Series(np.nan, index=s.index), lambda v: MISSING),
    "all None": (lambda s: pd.Series(None, index=s.index, dtype=object), lambda v: MISSING),
    "all NA": (lambda s: pd.Series(pd.NA, index=s.index), lambda v: MISSING),
    # decimal text (as money columns hold it) turned into numbers: refused once a value is present
    "to_numeric": (lambda s: pd.to_numeric(s), lambda v: v),
}  # fmt: skip
# Whole-chunk rewrites: (the step's pandas given a row mask, the same on the list of rows).
ROWWISE: dict[str, tuple[Callable[[pd.DataFrame, list[bool]], pd.DataFrame], Callable[[list, list[bool]], list]]] = {
    "as it is": (lambda f, keep: f, lambda rows, keep: rows),
    "filter": (
        lambda f, keep: f[np.array(keep, dtype=bool)],
        lambda rows, keep: [r for r, k in zip(rows, keep, strict=True) if k],
    ),
    "concat of filtered pieces": (
        lambda f, keep: pd.concat([f[np.array(keep, dtype=bool)], f[~np.array(keep, dtype=bool)]]),
        lambda rows, keep: (
            [r for r, k in zip(rows, keep, strict=True) if k] + [r for r, k in zip(rows, keep, strict=True) if not k]
        ),
    ),
}


@st.composite
def real_chunks(draw: st.DrawFn) -> tuple[list[str], list[list[Any]], str, str, str, list[bool]]:
    """A chunk as a single-platform app gives it (some columns missing in every row; no row or one
    row as often as more), a column, an element-wise and a whole-chunk rewrite, and a row mask."""
    width = draw(st.integers(2, 5))  # every table has many columns (a one-column row of NULL is "" to csv)
    columns = [f"c{i}" for i in range(width)]
    nrows = draw(st.one_of(st.just(0), st.just(1), st.integers(2, 8)))
    empty = draw(st.sets(st.sampled_from(columns)))  # missing in every row
    column = draw(st.sampled_from(columns))
    element = draw(st.sampled_from(sorted(ELEMENTWISE)))
    cells = DECIMAL_TEXT if element == "to_numeric" else CELLS
    rows = [
        [None if name in empty else draw(cells if name == column else CELLS) for name in columns] for _ in range(nrows)
    ]
    if element == "to_numeric" and draw(st.booleans()):
        rows = [[None if name == column else v for name, v in zip(columns, row, strict=True)] for row in rows]
    keep = draw(st.lists(st.booleans(), min_size=nrows, max_size=nrows))
    return columns, rows, column, element, draw(st.sampled_from(sorted(ROWWISE))), keep


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(real_chunks())
def test_pandas_steps_on_chunks_with_columns_missing_in_every_row(example) -> None:
    columns, rows, column, element, rowwise, keep = example
    rewrite, rewrite_one = ELEMENTWISE[element]
    select, select_rows = ROWWISE[rowwise]
    at = columns.index(column)

    def step(frame: pd.DataFrame) -> pd.DataFrame:
        return select(frame.assign(**{column: rewrite(frame[column])}), keep)

    def expected(value: Any) -> Any:
        got = rewrite_one(MISSING if is_missing(value) else value) if element == "fillna" else None
        if element != "fillna":
            got = MISSING if is_missing(value) else rewrite_one(value)
        return None if got is MISSING else got

    meant = select_rows([[*r[:at], expected(r[at]), *r[at + 1 :]] for r in rows], keep)
    frame = shaped(columns, rows)
    present = [r[at] for r in meant if r[at] is not None]
    try:
        out = apply(step, frame, destination=DEST, spec=STEP)
    except TransformError as refused:
        # Only a column holding a value that is not text is refused, with the one line.
        assert element == "to_numeric" and present, f"a step returning text or no value was refused: {refused}"
        dtype = str(step(frame)[column].dtype)
        where = f"transform '{STEP}' of destination '{DEST}'"
        assert str(refused) == f"{where} returned column '{column}' as {dtype}, not text: {HINT}"
        return
    assert not (element == "to_numeric" and present), "numbers were written as text"
    assert encode_rows(out) == python_csv(meant)
    assert len(out) == len(meant)


def test_other_columns_or_order_are_refused() -> None:
    frame = pd.DataFrame({"a": pd.array(["1"], dtype=TEXT), "b": pd.array(["2"], dtype=TEXT)})
    where = f"transform '{STEP}' of destination '{DEST}'"
    with pytest.raises(TransformError) as refused:
        apply(lambda f: f[["b", "a"]], frame, destination=DEST, spec=STEP)
    assert (
        str(refused.value) == f"{where} must return the same columns in the same order: same columns in another order"
    )
    with pytest.raises(TransformError) as refused:
        apply(lambda f: f.assign(c="3"), frame, destination=DEST, spec=STEP)
    assert str(refused.value) == f"{where} must return the same columns in the same order: missing [], unexpected ['c']"
    with pytest.raises(TransformError) as refused:
        apply(lambda f: f["a"], frame, destination=DEST, spec=STEP)
    assert str(refused.value) == f"{where} returned a Series, not a pandas DataFrame"


def test_a_steps_own_settings_error_is_one_line_naming_step_and_destination() -> None:
    frame = pd.DataFrame({"a": pd.array(["1"], dtype=TEXT)})

    def needs_settings(frame: pd.DataFrame) -> pd.DataFrame:
        raise TransformError("connection 'k' must hold the key\nin its password")

    with pytest.raises(TransformError) as refused:
        apply(needs_settings, frame, destination=DEST, spec=STEP)
    assert (
        str(refused.value)
        == f"transform '{STEP}' of destination '{DEST}': connection 'k' must hold the key in its password"
    )


def test_which_steps_take_a_connection() -> None:
    def frame_only(frame): ...
    def with_connection(frame, connection): ...
    def either(frame, connection=None): ...
    def nothing(): ...

    assert takes_connection(frame_only) is False
    assert takes_connection(with_connection) is True
    assert takes_connection(either) is None
    with pytest.raises(ValueError, match="must take the frame"):
        takes_connection(nothing)

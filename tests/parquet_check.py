"""Exactness of Parquet files, checked by a reader that is not the writer and by plain Python.

A Parquet object is read back with DuckDB (its own Parquet reader, not Arrow's); the CSV file of the
same destination and day is parsed by Python's ``csv`` module and converted by the obvious code below
(``decimal.Decimal``, ``datetime.fromisoformat``, ``int``); the two must agree cell by cell. Shares
nothing with the package but the declared type names (tables.Column.parquet_type), which are what
is under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tempfile
from decimal import Decimal
from typing import Any

import duckdb

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# DuckDB's name for each declared Parquet type.
DUCKDB_TYPES = {"string": "VARCHAR", "timestamp[us, tz=UTC]": "TIMESTAMP WITH TIME ZONE", "date32[day]": "DATE",
                "int64": "BIGINT"}  # fmt: skip
DECIMAL = re.compile(r"decimal128\((\d+), (\d+)\)")


def duckdb_type(declared: str) -> str:
    match = DECIMAL.fullmatch(declared)
    return f"DECIMAL({match[1]},{match[2]})" if match else DUCKDB_TYPES[declared]


def expected_cell(text: str, declared: str) -> Any:
    """A CSV field as the Parquet column of type ``declared`` must hold it (None: NULL)."""
    if text == "":
        return None  # NULL, in every column: the CSV writes NULL and an empty string alike
    if declared == "string":
        return text
    if declared.startswith("timestamp"):
        moment = dt.datetime.fromisoformat(text)
        assert moment.utcoffset() == dt.timedelta(0), text
        return (moment - EPOCH) // dt.timedelta(microseconds=1)  # DuckDB's epoch_us below
    if declared.startswith("date"):
        return dt.date.fromisoformat(text)
    if declared == "int64":
        return int(text)
    match = DECIMAL.fullmatch(declared)
    assert match, declared
    value = Decimal(text)
    assert value == value.quantize(Decimal(1).scaleb(-int(match[2]))), f"{text} has more places than {declared}"
    return value


def read_parquet(body: bytes, declared: list[str]) -> tuple[list[tuple[str, str]], list[tuple]]:
    """(column name and DuckDB type of each column, rows) of a Parquet file, by DuckDB; timestamps
    as microseconds since the epoch (no time zone conversion in between)."""
    with tempfile.NamedTemporaryFile(suffix=".parquet") as file:
        file.write(body)
        file.flush()
        con = duckdb.connect()
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{file.name}')").fetchall()
            names = [row[0] for row in described]
            pairs = zip(names, declared, strict=True)
            select = ", ".join(f'epoch_us("{n}")' if t.startswith("timestamp") else f'"{n}"' for n, t in pairs)
            rows = con.execute(f"SELECT {select} FROM read_parquet('{file.name}')").fetchall()
        finally:
            con.close()
    return [(row[0], row[1]) for row in described], rows


def csv_rows(body: bytes) -> tuple[list[str], list[list[str]]]:
    csv.field_size_limit(1 << 30)
    records = list(csv.reader(io.StringIO(body.decode("utf-8"), newline=""), strict=True))
    return records[0], records[1:]


def assert_same_values(parquet_body: bytes, csv_body: bytes, columns: list[tuple[str, str]], *, where: str) -> int:
    """The Parquet file holds exactly the CSV file's values, typed; ``columns``: (name, declared type)
    of the file's columns in order. Returns the row count."""
    names = [name for name, _ in columns]
    declared = [kind for _, kind in columns]
    header, records = csv_rows(csv_body)
    assert header == names, where
    schema, rows = read_parquet(parquet_body, declared)
    assert schema == [(name, duckdb_type(kind)) for name, kind in columns], where
    assert len(rows) == len(records), f"{where}: {len(rows)} Parquet rows, {len(records)} CSV rows"
    for number, (got, record) in enumerate(zip(rows, records, strict=True), 1):
        for name, kind, value, text in zip(names, declared, got, record, strict=True):
            want = expected_cell(text, kind)
            ok = value == want and (value is None) == (want is None)
            assert ok, f"{where}: row {number}, column {name}: Parquet {value!r}, CSV {text!r} (expected {want!r})"
    return len(rows)

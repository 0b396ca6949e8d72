"""Write docs/querying.md's CREATE TABLE statements from the table declarations (subscription_exports.tables).

The statements sit between `<!-- statements -->` and `<!-- /statements -->`; a test
(tests/test_querying.py) fails when the page and the declarations drift apart, and runs the DuckDB
statements over a real exported layout.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "querying.md"
sys.path.insert(0, str(ROOT / "plugins"))

from devtools.doc_tables import replace_section, rewrite  # noqa: E402
from subscription_exports.tables import DATE32, INT64, STRING, TABLES, TIMESTAMP_UTC, TableSpec  # noqa: E402

LOCATION = "s3://your-bucket/your-prefix"  # the destination's bucket and prefix (nested directories, folder)
DECIMAL = re.compile(r"decimal128\((\d+), (\d+)\)")


def engine_type(declared: str, names: dict[str, str], decimal: Callable[[int, int], str]) -> str:
    match = DECIMAL.fullmatch(declared)
    return decimal(int(match[1]), int(match[2])) if match else names[declared]


ENGINES: dict[str, Callable[[str], str]] = {
    "athena": lambda t: engine_type(t, {STRING: "string", TIMESTAMP_UTC: "timestamp", DATE32: "date", INT64: "bigint"},
                                    lambda p, s: f"decimal({p},{s})"),
    "snowflake": lambda t: engine_type(
        t, {STRING: "VARCHAR", TIMESTAMP_UTC: "TIMESTAMP_TZ", DATE32: "DATE", INT64: "NUMBER(19,0)"},
        lambda p, s: f"NUMBER({p},{s})"),
    # BigQuery's NUMERIC holds at most 29 integer digits; BIGNUMERIC more.
    "bigquery": lambda t: engine_type(t, {STRING: "STRING", TIMESTAMP_UTC: "TIMESTAMP", DATE32: "DATE", INT64: "INT64"},
                                      lambda p, s: f"{'NUMERIC' if p - s <= 29 else 'BIGNUMERIC'}({p},{s})"),
    "spark": lambda t: engine_type(t, {STRING: "STRING", TIMESTAMP_UTC: "TIMESTAMP", DATE32: "DATE", INT64: "BIGINT"},
                                   lambda p, s: f"DECIMAL({p},{s})"),
    "duckdb": lambda t: engine_type(
        t, {STRING: "VARCHAR", TIMESTAMP_UTC: "TIMESTAMPTZ", DATE32: "DATE", INT64: "BIGINT"},
        lambda p, s: f"DECIMAL({p},{s})"),
}  # fmt: skip


def columns(spec: TableSpec) -> list[tuple[str, str]]:
    """(name, declared Parquet type) of the file's columns, ``attributes`` included where the table has it
    (a destination without send_user_attributes leaves it out of its files: drop it from the statement)."""
    return [(c.name, c.parquet_type) for c in spec.output_columns(with_attributes=spec.supports_attributes)]


def _lines(items: list[str], indent: str = "  ") -> str:
    return ",\n".join(indent + item for item in items)


def athena(spec: TableSpec, fmt: str) -> str:
    # Athena reads CSV through OpenCSVSerDe, which takes every column as string (cast in queries).
    cols = columns(spec)
    typed = [f"`{n}` {ENGINES['athena'](t) if fmt == 'parquet' else 'string'}" for n, t in cols]
    storage = (
        "STORED AS PARQUET"
        if fmt == "parquet"
        else "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'\n"
        "WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '\"')\n"
        "STORED AS TEXTFILE"
    )
    header = "\n  'skip.header.line.count' = '1'," if fmt == "csv" else ""
    return (
        f"CREATE EXTERNAL TABLE {spec.name}_{fmt} (\n{_lines(typed)}\n)\nPARTITIONED BY (`dt` date)\n{storage}\n"
        f"LOCATION '{LOCATION}/{spec.name}/'\nTBLPROPERTIES ({header}\n  'projection.enabled' = 'true',\n"
        "  'projection.dt.type' = 'date',\n  'projection.dt.format' = 'yyyy-MM-dd',\n"
        "  'projection.dt.range' = '2026-01-01,NOW',\n"
        f"  'storage.location.template' = '{LOCATION}/{spec.name}/dt=${{dt}}/'\n);"
    )


def snowflake(spec: TableSpec, fmt: str) -> str:
    cols = columns(spec)
    if fmt == "parquet":
        typed = [f'"{n}" {ENGINES["snowflake"](t)} AS (VALUE:"{n}"::{ENGINES["snowflake"](t)})' for n, t in cols]
        file_format, pattern = "TYPE = PARQUET", ".*[.]parquet"
    else:
        typed = [
            f'"{n}" {ENGINES["snowflake"](t)} AS (VALUE:c{i}::{ENGINES["snowflake"](t)})'
            for i, (n, t) in enumerate(cols, 1)
        ]
        file_format = (
            "TYPE = CSV SKIP_HEADER = 1 FIELD_OPTIONALLY_ENCLOSED_BY = '\"' EMPTY_FIELD_AS_NULL = TRUE "
            "COMPRESSION = AUTO"
        )
        pattern = ".*[.]csv([.]gz)?"
    dt = "\"dt\" DATE AS (TO_DATE(SPLIT_PART(SPLIT_PART(METADATA$FILENAME, 'dt=', 2), '/', 1)))"
    return (
        f'CREATE EXTERNAL TABLE {spec.name}_{fmt} (\n{_lines([dt, *typed])}\n)\nPARTITION BY ("dt")\n'
        f"LOCATION = @exports_stage/{spec.name}/\nPATTERN = '{pattern}'\nFILE_FORMAT = ({file_format})\n"
        "AUTO_REFRESH = FALSE;"
    )


def bigquery(spec: TableSpec, fmt: str) -> str:
    typed = [f"`{n}` {ENGINES['bigquery'](t)}" for n, t in columns(spec)]
    options = (
        "format = 'PARQUET'"
        if fmt == "parquet"
        else "format = 'CSV',\n  skip_leading_rows = 1,\n  allow_quoted_newlines = TRUE"
    )
    ext = "parquet" if fmt == "parquet" else "csv"
    return (
        f"CREATE EXTERNAL TABLE `your_dataset.{spec.name}_{fmt}` (\n{_lines(typed)}\n)\n"
        "WITH PARTITION COLUMNS (`dt` DATE)\nWITH CONNECTION `your-project.aws-us-east-1.exports`\n"
        f"OPTIONS (\n  {options},\n  uris = ['{LOCATION}/{spec.name}/*.{ext}'],\n"
        f"  hive_partition_uri_prefix = '{LOCATION}/{spec.name}'\n);"
    )


def spark(spec: TableSpec, fmt: str) -> str:
    typed = [f"`{n}` {ENGINES['spark'](t)}" for n, t in columns(spec)] + ["`dt` DATE"]
    location = LOCATION.replace("s3://", "s3a://")
    if fmt == "parquet":
        using = "USING parquet\nOPTIONS (pathGlobFilter '*.parquet')"
    else:
        using = (
            "USING csv\nOPTIONS (header 'true', multiLine 'true', escape '\"', pathGlobFilter '*.csv',\n"
            "         timestampFormat \"yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX\")"
        )
    return (
        f"CREATE TABLE {spec.name}_{fmt} (\n{_lines(typed)}\n)\n{using}\nPARTITIONED BY (`dt`)\n"
        f"LOCATION '{location}/{spec.name}/';\nMSCK REPAIR TABLE {spec.name}_{fmt};"
    )


def duckdb(spec: TableSpec, fmt: str) -> str:
    where = f"{LOCATION}/{spec.name}/dt=*/*.{fmt}"
    if fmt == "parquet":
        read = f"read_parquet('{where}', hive_partitioning = true, hive_types = {{'dt': DATE}})"
    else:
        typed = ", ".join(f"'{n}': '{ENGINES['duckdb'](t)}'" for n, t in columns(spec))
        read = (
            f"read_csv('{where}', header = true, hive_partitioning = true, hive_types = {{'dt': DATE}},\n"
            f"    columns = {{{typed}}})"
        )
    return f"CREATE VIEW {spec.name}_{fmt} AS SELECT * FROM {read};"


WRITERS = {
    "athena": ("Athena (and Trino's Hive connector)", athena),
    "snowflake": ("Snowflake external tables", snowflake),
    "bigquery": ("BigQuery external tables (BigQuery Omni on S3)", bigquery),
    "spark": ("Spark SQL", spark),
    "duckdb": ("DuckDB", duckdb),
}


def statements(engine: str, fmt: str) -> str:
    """Every table's statement for one engine and format, as one SQL block."""
    return "\n\n".join(WRITERS[engine][1](spec, fmt) for spec in TABLES.values())


def render_statements() -> str:
    parts = []
    for engine, (title, _) in WRITERS.items():
        parts.append(f"### {title}\n")
        for fmt, label in (("parquet", "Parquet"), ("csv", "CSV")):
            parts.append(f"{label} (`{engine}:{fmt}`):\n\n```sql\n{statements(engine, fmt)}\n```\n")
    return "\n".join(parts)


def render(page: str) -> str:
    return replace_section(page, "statements", render_statements(), PAGE)


if __name__ == "__main__":
    rewrite(PAGE, render)

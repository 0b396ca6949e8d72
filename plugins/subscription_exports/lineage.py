"""Lineage of each export, reported to Airflow's hook lineage collector (``airflow.sdk.lineage``).

Airflow's own transfer operators report lineage this way: the common-sql hooks report the tables
a query reads and ``S3Hook`` the object it writes. A lineage reader (the OpenLineage provider,
when it is installed and configured) turns what was collected into the task's input and output
datasets. This package writes through a boto3 client and a DB-API connection, so it reports the
same facts itself, once per exported table, after the export succeeded:

* inputs: every source table the table's SQL reads (``TableSpec.source_tables``), named from the
  live source connection;
* output: ``s3://<bucket>/<key>`` of the data object (not its manifest, not the probe object).

Asset URIs, and the OpenLineage datasets the installed providers' converters make of them:

* PostgreSQL ``postgres://host:port/database/schema/table`` -> namespace ``postgres://host:port``,
  name ``database.schema.table`` (OpenLineage naming spec, Postgres);
* SQLite ``file:///path/to/source.db/table`` -> namespace ``file``, name
  ``/path/to/source.db/table``. The naming spec has no SQLite entry; its maintainers count SQLite
  as a local file (OpenLineage issue 1186), and ``file`` is the only file scheme Airflow's
  providers convert;
* S3 ``s3://bucket/key`` -> namespace ``s3://bucket``, name ``key`` (naming spec, S3).

Without a lineage reader Airflow hands out a no-op collector: nothing is queried or reported, and
nothing of OpenLineage is ever imported by this package. Reporting never fails an export: a
problem is logged as a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from subscription_exports.compat import hook_lineage_collector, postgres_openlineage_converter

log = logging.getLogger(__name__)


def active_collector() -> Any | None:
    """Airflow's hook lineage collector, or None when no lineage reader is installed (no-op collector)."""
    try:
        collector, NoOpCollector = hook_lineage_collector()
    except Exception as exc:
        log.warning("lineage: the hook lineage collector is not available: %s", exc)
        return None
    return None if isinstance(collector, NoOpCollector) else collector


def postgres_table_uris(connection: Any, tables: tuple[str, ...]) -> dict[str, str]:
    """``postgres://host:port/database/schema/table`` of each table, as the connection resolves it."""
    info = connection.info  # psycopg 3 and psycopg2 (>= 2.8) alike
    host, port = info.host, info.port or 5432
    with connection.cursor() as cur:
        # The SQL names tables without a schema: the connection's search_path decides which one it reads.
        cur.execute(
            "SELECT t.name, n.nspname, current_database() FROM unnest(%s::text[]) AS t(name) "
            "JOIN pg_class AS c ON c.oid = to_regclass(quote_ident(t.name)) "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace",
            (list(tables),),
        )
        rows = cur.fetchall()
    connection.rollback()  # read-only; end the transaction
    return {name: f"postgres://{host}:{port}/{database}/{schema}/{name}" for name, schema, database in rows}


def sqlite_table_uris(connection: Any, tables: tuple[str, ...]) -> dict[str, str]:
    """``file://<absolute database path>/<table>`` of each table (the main database's file)."""
    path = next(row[2] for row in connection.execute("PRAGMA database_list") if row[1] == "main")
    return {name: f"file://{quote(path)}/{quote(name)}" for name in tables}


TABLE_URIS = {"postgres": postgres_table_uris, "sqlite": sqlite_table_uris}


@dataclass(eq=False)  # identity: the collector keys its entries by id(context)
class ExportLineage:
    """The lineage context of one destination's export task; the collector keys entries by it."""

    destination: str
    collector: Any
    dialect: str
    connection: Any
    _uris: dict[str, str] = field(default_factory=dict)

    def exported(self, *, source_tables: tuple[str, ...], bucket: str, key: str) -> None:
        """Report one exported table: the source tables its SQL read, and the data object written."""
        try:
            missing = tuple(t for t in source_tables if t not in self._uris)
            if missing:
                self._uris.update(TABLE_URIS[self.dialect](self.connection, missing))
            for table in source_tables:
                if table in self._uris:
                    self.collector.add_input_asset(context=self, uri=self._uris[table])
                else:
                    log.warning("lineage: source table '%s' not found; not reported", table)
            self.collector.add_output_asset(context=self, uri=f"s3://{bucket}/{key}")
        except Exception as exc:
            log.warning("lineage of destination '%s' not reported: %s", self.destination, exc)


def for_export(destination: str, dialect: str, connection: Any) -> ExportLineage | None:
    """The lineage reporter of one destination's export, or None when no lineage reader is installed."""
    collector = active_collector()
    if collector is None:
        return None
    if dialect == "postgres":
        try:
            postgres_openlineage_converter()
        except Exception as exc:
            log.warning("lineage: source tables may not reach OpenLineage: %s", exc)
    return ExportLineage(destination=destination, collector=collector, dialect=dialect, connection=connection)

"""The export DAGs' tasks (TaskFlow), shared by both integration types.

Wiring per DAG: ``resolve_window`` and ``load_destinations`` run once; then, mapped per
destination, ``check_destination`` proves the bucket is reachable and the prefix writable
before ``export_tables`` writes anything. A failing destination fails only its own map index.

Each exported table of each destination emits one event of the Airflow Asset
``subscription_exports/<dag_id>/<table>`` (see ``table_asset``); the event's extra names the
destination and describes the object (bucket, key, rows, bytes, sha256, window). The assets are
the export task's plain outlets, so Airflow creates them when it parses the DAG. Not an
AssetAlias: in Airflow 3.3 the first events through an alias write the alias-asset link with a
check-then-insert, and mapped tasks finishing at the same moment race on it; Airflow then fails
the losing task after its export succeeded (UniqueViolation). The same happens to an asset first
created by an event at run time (``idx_asset_name_uri_unique``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import Asset, Param, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException

from subscription_exports.integrations import INTEGRATIONS

log = logging.getLogger(__name__)


def default_args() -> dict[str, Any]:
    """Retries with exponential backoff. ``SUBSCRIPTION_EXPORTS_RETRIES`` (environment, read at parse
    time like any Airflow setting) changes the count, e.g. 0 for `airflow dags test` in CI."""
    return {
        "retries": int(os.environ.get("SUBSCRIPTION_EXPORTS_RETRIES", "3")),
        "retry_delay": dt.timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=30),
    }


def export_task_settings() -> dict[str, Any]:
    """Concurrency settings of ``export_tables``, from the environment (read at parse time like any
    Airflow setting), so thousands of destinations do not overload the source DB or the store.

    * ``SUBSCRIPTION_EXPORTS_POOL``: the Airflow pool the exports run in (e.g. one pool per source
      database, its slots = the concurrent export queries the database can take). Unset (default):
      Airflow's ``default_pool``. The pool must exist (``airflow pools set NAME SLOTS DESCRIPTION``):
      tasks in a pool that does not exist are never scheduled, so it is only set when configured.
    * ``SUBSCRIPTION_EXPORTS_MAX_ACTIVE_EXPORTS`` (default 16): ``max_active_tis_per_dag`` of the
      export task, i.e. at most this many destinations export at once across all runs of the DAG;
      ``0`` removes the limit.
    """
    settings: dict[str, Any] = {}
    pool = os.environ.get("SUBSCRIPTION_EXPORTS_POOL", "").strip()
    if pool:
        settings["pool"] = pool
    limit = int(os.environ.get("SUBSCRIPTION_EXPORTS_MAX_ACTIVE_EXPORTS", "16") or "0")
    if limit > 0:
        settings["max_active_tis_per_dag"] = limit
    return settings


def table_asset(dag_id: str, table: str) -> Asset:
    """The asset every export of `table` by DAG `dag_id` emits an event of (one per destination)."""
    return Asset(f"subscription_exports/{dag_id}/{table}")


RESOLVE_WINDOW_DOC = """
#### resolve_window: which rows this run exports

Scheduled and backfilled runs export their data interval, one UTC day `[D 00:00, D+1 00:00)`;
a run triggered with `date_from`/`date_to` exports that range (both inclusive, UTC).

**Triage**: this task fails at once, without retries, for a bad manual range: inverted
(`date_from` after `date_to`), a future day, over 366 days, or a malformed date. The log names
the problem. Trigger a new run with a corrected range; nothing was written to any bucket.
"""

LOAD_DESTINATIONS_DOC = """
#### load_destinations: who receives this run's files

Reads the Airflow Variable `<dag_id>_destinations` if it is set, else the shipped file
`include/destinations/<dag_id>.yaml`, and validates it.

**Triage**: a failure is a configuration error, reported as one line naming the file or Variable,
the destination and the field (e.g. `field 'event_types': unknown event type ...`). Fix the
Variable (Admin → Variables) or the file, then clear this task: the destinations are re-read.
"""

CHECK_DESTINATION_DOC = """
#### check_destination: can this destination receive files?

One map index per destination (its name is the map index label). Lists the destination's prefix
and writes, then deletes, an empty probe object under `<prefix>/.export-write-check/`. Nothing is
exported for a destination whose check failed; other destinations go on.

**Triage**: the error names destination, connection id, bucket and the store's error code:

* `connection '...' is not defined`: add the `aws` connection (Admin → Connections or a secrets backend);
* `InvalidAccessKeyId` / `SignatureDoesNotMatch`: wrong key or secret in the connection;
* `AccessDenied`: the key lacks `s3:ListBucket` / `s3:*Object` on the bucket (see README, least privilege);
* `NoSuchBucket`: wrong bucket name (the exporter never creates buckets);
* `EndpointConnectionError` / TLS errors: `endpoint_url`, `verify` in the connection's extra, network.

Fix the cause, then clear this map index (and its `export_tables`); no data was written.
"""

EXPORT_TABLES_DOC = """
#### export_tables: write this destination's files

One map index per destination. For each table: streams the window's rows from the source,
uploads the CSV (one PUT, or a multipart upload for large files) and then its
`.manifest.json`. The log shows, per table, progress lines on long exports (rows, MiB, rows/s)
and one summary line: `exported destination=... table=... window=... rows=... bytes=... uri=...
seconds=... rows_per_s=...`. Each exported table also emits an event of the Asset
`subscription_exports/<dag_id>/<table>` whose extra holds the destination, bucket, key, rows,
bytes, sha256 and the window.

**Triage**: a failed export leaves no partial object (failed multipart uploads are aborted);
files of tables exported before the failure are complete and are rewritten by the retry.

* source errors (connection refused, SQL errors, timeouts): check the source connection and the
  SQL in `include/sql/<dialect>/<table>.sql`;
* store errors (`SlowDown`, 5xx, dropped connections) were already retried with backoff; if they
  persist, lower the concurrency (pool / `SUBSCRIPTION_EXPORTS_MAX_ACTIVE_EXPORTS`, see README);
* `AccessDenied` on upload or manifest: the key lacks `s3:PutObject` on the prefix.

Clear the map index to retry: the same keys are rewritten with the same bytes.
"""


def range_params() -> dict[str, Param]:
    """Params of a manual range export: shown as date pickers on the trigger form."""
    return {
        "date_from": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Export from (UTC date)",
            description="Manual range export: first day, from 00:00:00 UTC. Leave both dates empty to export "
            "the run's own day (the previous UTC day).",
        ),
        "date_to": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Export to (UTC date, inclusive)",
            description="Manual range export: last day, up to 23:59:59.999999 UTC. "
            "At most 366 days, not in the future.",
        ),
    }


@task(task_id="resolve_window", doc_md=RESOLVE_WINDOW_DOC)
def resolve_window() -> dict[str, str]:
    """The rows this run exports: its data interval (one UTC day), or the manual date range."""
    from subscription_exports.windows import WindowError, range_window, window_from_interval

    context = get_current_context()
    params = context["params"]
    try:
        if params.get("date_from") or params.get("date_to"):
            run_after = context["dag_run"].run_after
            window = range_window(params.get("date_from"), params.get("date_to"), today=run_after.date())
        else:
            window = window_from_interval(context["data_interval_start"], context["data_interval_end"])
    except WindowError as exc:
        raise AirflowFailException(str(exc)) from None
    log.info("exporting %s window %s .. %s (UTC)", window.kind, window.start.isoformat(), window.end.isoformat())
    return window.to_dict()


@task(task_id="load_destinations", doc_md=LOAD_DESTINATIONS_DOC)
def load_destinations(integration_id: str) -> list[dict[str, Any]]:
    """Validated destinations, from the Variable override if set, else the shipped file."""
    from airflow.sdk import Variable

    from subscription_exports import config

    integration = INTEGRATIONS[integration_id]
    override = Variable.get(integration.variable_key, default=None)
    try:
        source_conn_id, destinations = config.load_destinations(integration, variable_text=override)
    except config.ConfigError as exc:
        raise AirflowFailException(str(exc)) from None
    log.info("%d destination(s): %s", len(destinations), ", ".join(d.name for d in destinations))
    return [{"source_conn_id": source_conn_id, **d.model_dump(mode="json")} for d in destinations]


def _destination(raw: dict[str, Any], integration_id: str):
    from subscription_exports import config

    integration = INTEGRATIONS[integration_id]
    fields = {k: v for k, v in raw.items() if k != "source_conn_id"}
    try:
        return integration, config.validate_destination(fields, integration, origin="mapped destination")
    except config.ConfigError as exc:
        raise AirflowFailException(str(exc)) from None


def _label(context: Any, dest_name: str) -> None:
    # Shown as the map index name in the UI (map_index_template below).
    context["destination_name"] = dest_name


@task(task_id="check_destination", map_index_template="{{ destination_name }}", doc_md=CHECK_DESTINATION_DOC)
def check_destination(destination: dict[str, Any], integration_id: str) -> dict[str, Any]:
    """Fail fast, before any upload, naming destination, connection, bucket and the store's error code."""
    from subscription_exports import s3

    _, dest = _destination(destination, integration_id)
    _label(get_current_context(), dest.name)
    where = f"destination '{dest.name}' (connection '{dest.conn_id}', bucket '{dest.bucket_name}')"
    try:
        client = s3.s3_client(dest.conn_id)
    except Exception as exc:
        raise AirflowFailException(f"{where}: cannot use the connection: {_conn_problem(exc, dest.conn_id)}") from None
    try:
        s3.check_destination(client, bucket=dest.bucket_name, prefix=dest.prefix)
    except Exception as exc:
        raise AirflowFailException(f"{where}: check failed: {s3.error_code(exc)}") from None
    log.info("%s: bucket reachable, prefix '%s' writable", where, dest.prefix)
    return destination


def _conn_undefined(exc: Exception) -> bool:
    """Airflow's "connection not found" (AirflowNotFoundException or a subclass)."""
    return "NotFound" in type(exc).__name__


def _conn_problem(exc: Exception, conn_id: str) -> str:
    if _conn_undefined(exc):
        return f"connection '{conn_id}' is not defined"
    return " ".join(str(exc).split())[:300] or type(exc).__name__


@task(task_id="export_tables", map_index_template="{{ destination_name }}", doc_md=EXPORT_TABLES_DOC)
def export_tables(destination: dict[str, Any], window: dict[str, str], integration_id: str) -> list[dict[str, Any]]:
    """Export each selected table of one destination; one summary line and one Asset event per table."""
    from subscription_exports import exporter, s3, source
    from subscription_exports.windows import Window

    integration, dest = _destination(destination, integration_id)
    context = get_current_context()
    _label(context, dest.name)
    win = Window.from_dict(window)
    # Airflow emits an event of every outlet asset when the task succeeds, reading the outlets at
    # that moment: a destination that exports only some tables narrows its own instance's outlets
    # to those, so it emits no event for a table it did not export.
    context["task"].outlets = [table_asset(integration_id, t) for t in dest.tables]
    client = s3.s3_client(dest.conn_id)
    source_conn_id = destination["source_conn_id"]
    try:
        dialect, connection = source.connect(source_conn_id)
    except Exception as exc:
        if not (isinstance(exc, source.SourceError) or _conn_undefined(exc)):
            raise  # e.g. the database is down: retried
        # A configuration error (undefined connection, unsupported type): retrying cannot help.
        where = f"destination '{dest.name}': source connection '{source_conn_id}'"
        raise AirflowFailException(f"{where}: {_conn_problem(exc, source_conn_id)}") from None
    results = []
    try:
        for table in dest.tables:
            result = exporter.export_table(
                integration=integration,
                spec=integration.table(table),
                dest=dest,
                window=win,
                dialect=dialect,
                connection=connection,
                client=client,
                run_id=context["run_id"],
            )
            rate = result.rows / result.seconds if result.seconds else float(result.rows)
            log.info(
                "exported destination=%s table=%s window=%s rows=%d bytes=%d uri=%s seconds=%.3f rows_per_s=%.0f",
                result.destination,
                result.table,
                result.window,
                result.rows,
                result.bytes,
                result.uri,
                result.seconds,
                rate,
            )
            context["outlet_events"][table_asset(integration_id, table)].extra = _event_extra(
                result, win, dest, context["run_id"]
            )
            results.append(result.to_dict())
    finally:
        connection.close()
    return results


def _event_extra(result: Any, window: Any, dest: Any, run_id: str) -> dict[str, Any]:
    """What a downstream DAG needs to read the new object without listing the bucket."""
    return {
        "destination": dest.name,
        "app_id": dest.app_id,
        "table": result.table,
        "bucket": result.bucket,
        "key": result.key,
        "uri": result.uri,
        "manifest_key": result.manifest_key,
        "rows": result.rows,
        "bytes": result.bytes,
        "sha256": result.sha256,
        "window": window.describe(),
        "run_id": run_id,
    }


def export_destinations(integration_id: str, window: Any) -> None:
    """Wire the per-destination tasks: check, then export, mapped over the loaded destinations.

    A mapped task group keeps each destination's check and export on the same map index, so a
    failing check stops only its own destination's export. The check waits for the window: a bad
    date range fails the run before any destination is touched, even by the write probe.
    """

    @task_group(group_id="destination")
    def per_destination(destination: Any) -> None:
        checked = check_destination(destination, integration_id=integration_id)
        window >> checked
        tables = INTEGRATIONS[integration_id].table_names
        export_tables.override(outlets=[table_asset(integration_id, t) for t in tables], **export_task_settings())(
            checked, window, integration_id=integration_id
        )

    per_destination.expand(destination=load_destinations(integration_id))

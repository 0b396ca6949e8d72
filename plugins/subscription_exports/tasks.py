"""The export DAGs' tasks (TaskFlow), shared by both integration types.

Wiring per DAG: ``resolve_window`` and ``load_destinations`` run once; then, mapped per
destination, ``check_destination`` proves the bucket is reachable and the prefix writable
before ``export_tables`` writes anything. A failing destination fails only its own map index.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import Param, get_current_context, task
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


@task(task_id="resolve_window")
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


@task(task_id="load_destinations")
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


@task(task_id="check_destination", map_index_template="{{ destination_name }}")
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


def _conn_problem(exc: Exception, conn_id: str) -> str:
    name = type(exc).__name__
    if "NotFound" in name:
        return f"connection '{conn_id}' is not defined"
    return " ".join(str(exc).split())[:300] or name


@task(task_id="export_tables", map_index_template="{{ destination_name }}")
def export_tables(destination: dict[str, Any], window: dict[str, str], integration_id: str) -> list[dict[str, Any]]:
    """Export each selected table of one destination; one summary line per table."""
    from subscription_exports import exporter, s3, source
    from subscription_exports.windows import Window

    integration, dest = _destination(destination, integration_id)
    context = get_current_context()
    _label(context, dest.name)
    win = Window.from_dict(window)
    client = s3.s3_client(dest.conn_id)
    dialect, connection = source.connect(destination["source_conn_id"])
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
            results.append(result.to_dict())
    finally:
        connection.close()
    return results

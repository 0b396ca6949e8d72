"""
### Custom S3 UA export: `ua_events` and `campaign_performance` to any S3-compatible store

Every day at **04:00 UTC** this DAG exports the previous UTC day for each configured
destination: UA events *recorded* (`created_at`) in `[D 00:00:00, D+1 00:00:00)`, and the
campaign performance metrics whose `date` is D (with derived `cpi_usd`, `cpc_usd`, `cpm_usd`,
`ctr`, `icr`, `ipm`). Stores: AWS S3, MinIO, SeaweedFS, DigitalOcean Spaces, Wasabi, Backblaze
B2, Cloudflare R2 — endpoint URL, region, addressing style and CA bundle come from the
destination's Airflow `aws` connection.

* **Destinations**: the Airflow Variable `custom_s3_ua_export_destinations` when it is set (Admin →
  Variables, an `AIRFLOW_VAR_...` environment variable or a secrets backend), else the shipped file
  `include/destinations/custom_s3_ua_export.yaml` (listed below). The Variable replaces the file entirely and
  is read when a run starts, so the list below may not be what runs. To see the destinations in
  effect: `airflow variables get custom_s3_ua_export_destinations > current.json`, then
  `PYTHONPATH=plugins python -m subscription_exports.config check --dag-id custom_s3_ua_export
  current.json` (every problem, and the count); or a dry run (its `load_destinations` log names
  them and their source).
* **Backfill and dry run**: the UI's Backfill form sends the `dry_run` box (and every other
  parameter) only when *Override parameters on existing runs* is ticked; **without it the backfill
  writes** every day of its range. `airflow backfill create` is dry only with
  `--dag-run-conf '{"dry_run": true}'`. A backfill run does what its backfill asked: re-running a
  day whose earlier run was a dry run exports it for real unless the backfill asks for a dry run.
* **Runs and the days they export** (UTC; only days that are over, never today):
  * schedule: the previous day D, run id `scheduled__<D>T00:00:00+00:00`;
  * backfill (`airflow backfill create --dag-id custom_s3_ua_export --from-date A --to-date B`, or the
    UI's Backfill): each day D of A..B, run id `backfill__<D>T00:00:00+00:00`; rewrites the
    days' own keys (idempotent);
  * trigger with a logical date (UI date picker, `--logical-date`, REST `logical_date`): the
    logical date's UTC day, **whatever its time of day** (picking November 22 in the form gives
    22:00 or whatever time it is: the run exports 2026-11-22). The form fills in *now*, a day that
    is not over: pick a day, or clear the field;
  * trigger without a logical date and without dates (`airflow dags trigger custom_s3_ua_export`, REST,
    UI with the field cleared): the latest day whose 04:00 UTC run time had passed at trigger time;
  * trigger with `date_from` / `date_to` (UI form, `--conf`, REST `conf`): one file per table
    covering the range, under its own key (single manual runs only: a backfill given these
    dates fails).

  A manual run's **note** (run list, run page) says what it exports, e.g. `Exports 2026-11-22 (UTC)`.
  In the grid (which shows run ids, not notes) a UI/REST trigger with a logical date is named by
  its day: `manual__2026-11-22_triggered_<trigger time>`; other manual runs keep Airflow's
  `manual__<trigger time>`. Details: `resolve_window`'s task docs.

* **Dry run**: trigger with `dry_run` ticked: checks every destination, shapes every row through
  its own step as the real run would, and logs the keys, rows, bytes and sha256 it would write;
  writes nothing. It does not block the real run of its day: when it starts
  it gives up its logical date (its note says so; the day stays its data interval), so from then on
  the real trigger, the scheduled run and a backfill of that day run as usual.

**Triage**: each destination is one `export_tables` map index, labelled with its name and
index (`acme-ios (#2)`: the number the Clear dialog shows). A failed
one logs its cause as one ERROR line (the settings field, or the connection, bucket and the
store's error code, or the export error; no partial object). Fix the Variable, file or
connection, then clear that map index: it re-reads its settings, the others are not re-exported.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import dag

from subscription_exports.alerts import dag_alert_args
from subscription_exports.config import shipped_destinations_doc
from subscription_exports.integrations import CUSTOM_S3_UA_EXPORT
from subscription_exports.tasks import (
    default_args,
    dry_run_params,
    export_destinations,
    range_params,
    resolve_window,
)
from subscription_exports.timetable import CalendarDayTimetable


@dag(
    dag_id=CUSTOM_S3_UA_EXPORT.dag_id,
    schedule=CalendarDayTimetable(run_at=dt.time(4, 0)),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    params={**range_params(), **dry_run_params()},
    default_args=default_args(),
    **dag_alert_args(CUSTOM_S3_UA_EXPORT.dag_id),  # summary when a run ends, delivery deadline (docs/alerts.md)
    tags=["export", "s3", "user-acquisition"],
    doc_md=__doc__ + shipped_destinations_doc(CUSTOM_S3_UA_EXPORT),
)
def custom_s3_ua_export():
    export_destinations(CUSTOM_S3_UA_EXPORT.dag_id, window=resolve_window())


custom_s3_ua_export()

"""The export DAGs' tasks (TaskFlow), shared by both integration types.

Wiring per DAG: ``resolve_window``, then ``load_destinations`` (once: the destination names);
then ``export_tables``, one map index per destination, labelled with its name. Each map index
reads and validates its own destination's settings when it runs, checks the bucket is reachable
and the prefix writable, and only then writes. A failing destination fails only its own map index;
nothing per destination waits for another per-destination task, so no map index is ever
``upstream_failed`` (Airflow renders a map index's label only when it runs).

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
import hashlib
import json
import logging
import os
import time
from typing import Any, NoReturn

from airflow.sdk import Asset, Param, get_current_context, task, task_group

from subscription_exports import alerts
from subscription_exports.compat import (
    EXPONENTIAL_BACKOFF,
    AirflowFailException,
    connection_undefined,
    exception_for_callbacks,
)
from subscription_exports.integrations import INTEGRATIONS

log = logging.getLogger(__name__)


def default_args() -> dict[str, Any]:
    """Retries with exponential backoff. ``SUBSCRIPTION_EXPORTS_RETRIES`` (environment, read at parse
    time like any Airflow setting) changes the count, e.g. 0 for `airflow dags test` in CI;
    ``SUBSCRIPTION_EXPORTS_RETRY_DELAY_SECONDS`` the first delay (default 60, doubling each retry)."""
    return {
        "retries": int(os.environ.get("SUBSCRIPTION_EXPORTS_RETRIES", "3")),
        "retry_delay": dt.timedelta(seconds=float(os.environ.get("SUBSCRIPTION_EXPORTS_RETRY_DELAY_SECONDS", "60"))),
        # A multiplier in Airflow 3.3 (True is 1.0, a constant delay): 2.0 doubles the delay each retry.
        "retry_exponential_backoff": EXPONENTIAL_BACKOFF,
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

Which days a run exports (UTC, whole days), and its run id:

* **schedule** (04:00 UTC): the previous day D; run id `scheduled__<D>T00:00:00+00:00`.
* **backfill** (`airflow backfill create --from-date A --to-date B`, or the UI's Backfill): each
  day D of A..B, one run per day; run id `backfill__<D>T00:00:00+00:00`.
* **trigger with `date_from`/`date_to`** (UI form, CLI `--conf`, REST `conf`): that range, both
  days inclusive; run id `manual__<trigger time>` (or your own `--run-id` / `dag_run_id`).
* **trigger without dates and without a logical date** (UI, `airflow dags trigger DAG`, REST):
  the latest day whose 04:00 UTC export time had passed when the run was triggered (at 05:00 on
  March 8: March 7; at 03:00: March 6), i.e. the day the latest scheduled run exported.
* **trigger with a logical date** (UI, `--logical-date`, REST `logical_date`): the logical date's
  UTC day, whatever its time of day (the UI's date picker keeps the current time: picking
  November 22 exports 2026-11-22); UI/REST run id `manual__<D>_triggered_<trigger time>`. A day
  that is not over yet is refused (the UI fills in *now*: pick a day, or clear the field to export
  the latest complete day); so are `date_from`/`date_to`, or a data interval typed in, that
  contradict a logical date naming a day that is over.
* **dry run** (`dry_run` ticked): the same window; the run gives up its logical date when it starts
  (its note says so, the day stays its data interval), so the real run of that day is never blocked.

A manual run's window is also written to its **note** (run list and run page) when it starts.
The log line `... run exports ... window ...` states the window.

**Triage**: this task fails at once, without retries, writing nothing, when the request is wrong:
a range inverted (`date_from` after `date_to`), over 366 days, with a malformed date, or ending
on a day that is not over yet (only complete UTC days: the message names the latest complete
day); `date_from`/`date_to` given to a backfill (they apply to single manual runs only). Trigger
a new run with a corrected request. Any other error here is a bug: it also fails at once.
"""


LOAD_DESTINATIONS_DOC = """
#### load_destinations: which destinations this run exports

Reads the Airflow Variable `<dag_id>_destinations` if it is set, else the shipped file
`include/destinations/<dag_id>.yaml`, and returns the destination **names**: one `export_tables`
map index each. The destinations' settings are read again by each `export_tables` map index.

Fails the run (nothing is written) only for what belongs to no single destination: a file or
Variable that is not valid YAML/JSON, a missing or unknown top-level field, a destination without a
name, a name used twice, or two destinations (of this DAG, or one of each DAG) that can write the
same object key, or more destinations than Airflow maps one task over (`[core] max_map_length`,
1024 by default; the cause names the setting and both numbers). A mistake inside one destination's
entry (e.g. `event_types: [trial_strated]`) is logged here as a warning and fails only that
destination's `export_tables`.

**Triage**: the cause is one line naming the file or Variable (and the destinations, for a key
collision, with the key pattern). Fix the Variable (Admin → Variables) or the file, then clear this
task: the destinations are re-read and every destination exports.
"""

EXPORT_TABLES_DOC = """
#### export_tables: check, then write, this destination's files

One map index per destination, labelled with its name. Each try:

1. reads the Variable or file again and validates **this destination's entry as it is now**
   (so a fixed Variable or file takes effect when the map index is cleared) and that no other
   destination can write its keys;
2. checks the destination: lists its prefix and writes, then deletes, an empty probe object under
   `<prefix>/.export-write-check/`;
3. for each table: streams the window's rows from the source, uploads the CSV (one PUT, or a
   multipart upload for large files) and then its `.manifest.json`.

The log shows, per table, progress lines on long exports (rows, MiB, rows/s) and one summary line:
`exported destination=... table=... window=... rows=... bytes=... uri=... seconds=... rows_per_s=...`.
Each exported table emits an event of the Asset `subscription_exports/<dag_id>/<table>` whose extra
holds the destination, bucket, key, rows, bytes, sha256 and the window. A **dry run** (trigger param
`dry_run`) does steps 1 and 2, then step 3 without the upload: it reads, shapes and encodes every row
(through the destination's own step, which fails the dry run as it would fail the export) and logs,
per table, `dry run: destination=... table=... window=... rows=... bytes=... sha256=... would write
s3://...`: it writes no data object, no manifest and emits no Asset event.

**Triage**: the cause is logged as one ERROR line before the task fails. Configuration errors and a
refused check fail at once (no retries); nothing was written:

* `... destination 'X': field '...': ...`: fix that field in the Variable or file;
* `... destination 'X' is no longer configured`: it was removed after the run started; nothing to do;
* `connection '...' is not defined`: add the `aws` connection (Admin → Connections or a secrets backend);
* `cannot use the connection: Invalid endpoint` / `region_name`: fix the connection's extra;
* `InvalidAccessKeyId` / `SignatureDoesNotMatch`: wrong key or secret in the connection;
* `AccessDenied`: the key lacks `s3:ListBucket` / `s3:*Object` on the bucket (see README, least privilege);
* `NoSuchBucket`: wrong bucket name (the exporter never creates buckets);
* `SSLError` (certificate verify failed, wrong version number): `verify` or the scheme of `endpoint_url`;
* `transform '...' of destination 'X' ...`: the destination's own step returned columns that are not
  the file's, or not text, or its `transform_conn_id` connection is missing: fix the step or add the
  connection (not retried: the same step gives the same result).

A check that meets an unreachable or busy store (`EndpointConnectionError`, `ConnectionClosedError`,
timeouts, 5xx, `SlowDown` / `Throttling`) fails only this try, nothing written, and its line ends
`the store is unreachable or busy, Airflow retries this task (try N of M)`: the retries (exponential
backoff) run it again. If the last try's line says `no retries left`, clear this map index once the
store answers; if it never does, check `endpoint_url` (host, port) and the network.

Export errors leave no partial object (failed multipart uploads are aborted); files of tables
exported before the failure are complete and are rewritten by the retry:

* source errors (connection refused, SQL errors, timeouts): check the source connection and the
  SQL in `include/sql/<dialect>/<table>.sql`;
* store errors (`SlowDown`, 5xx, dropped connections) were already retried with backoff; if they
  persist, lower the concurrency (pool / `SUBSCRIPTION_EXPORTS_MAX_ACTIVE_EXPORTS`, see README);
* `AccessDenied` on upload or manifest: the key lacks `s3:PutObject` on the prefix.

Fix the cause, then clear this map index: it runs with the settings as they are then, and the
other destinations are not exported again. The same keys are rewritten with the same bytes.
"""


def range_params() -> dict[str, Param]:
    """Params of a manual range export: shown as date pickers on the trigger form.

    Airflow 3.3 also shows them on the Backfill form, but a backfill exports each day of its own
    date range: a backfill run that receives them fails at once (``windows.resolve``)."""
    only_manual = (
        "Single manual runs (Trigger) only: a backfill exports each day of its own From/To range and fails "
        "if given these dates (the Backfill form sends them only with Override ticked). "
    )
    return {
        "date_from": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Export from (UTC date)",
            description=only_manual + "Manual range export: first day, from 00:00:00 UTC. Leave both dates empty "
            "to export one day: the logical date's UTC day (any time of day) if it is set, else the latest day "
            "whose 04:00 UTC export time has passed.",
        ),
        "date_to": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Export to (UTC date, inclusive)",
            description=only_manual + "Manual range export: last day, up to 23:59:59.999999 UTC. At most 366 "
            "days; must be over (UTC) when the run starts, i.e. yesterday (UTC) or earlier.",
        ),
    }


@task(task_id="resolve_window", doc_md=RESOLVE_WINDOW_DOC, retries=0)
def resolve_window() -> dict[str, str]:
    """The rows this run exports (see RESOLVE_WINDOW_DOC). No retries: it only computes, so any error
    (a bad request or a bug) fails the run at once instead of retrying for minutes."""
    import datetime as dt

    from subscription_exports.windows import DEFAULT_RUN_AT, WindowError, resolve

    context = get_current_context()
    dag_run = context["dag_run"]
    # From the run itself: Airflow's context leaves the data interval out when there is no logical
    # date, which is the case of a dry run that gave up its logical date (notes.release_dry_run_slot).
    start = getattr(dag_run, "data_interval_start", None) or context.get("data_interval_start")
    end = getattr(dag_run, "data_interval_end", None) or context.get("data_interval_end")
    run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
    try:
        window = resolve(
            run_type=run_type,
            params=context["params"],
            logical_date=dag_run.logical_date,
            run_after=dag_run.run_after,
            data_interval=(start, end) if start is not None and end is not None else None,
            now=dt.datetime.now(dt.UTC),
            run_at=getattr(context["dag"].timetable, "run_at", DEFAULT_RUN_AT),
        )
    except WindowError as exc:
        _fail(str(exc))
    log.info(
        "%s run exports %s window %s (%s .. %s UTC)",
        run_type,
        window.kind,
        window.label,
        window.start.isoformat(),
        window.end.isoformat(),
    )
    return window.to_dict()


DRY_RUN_HELP = (
    'Backfill form: honoured only with "Override parameters on existing runs" ticked; without it the form '
    "sends no parameters and the backfill WRITES every day. Trigger form: resolve the window, validate and "
    "check every destination, read and shape every row through the destination's own step as a real run would, and "
    "log per destination the keys, rows, bytes and sha256 it would write; no data object, "
    "no manifest and no Asset event is written. A dry run does not block the real run of its day: it gives "
    "up its logical date when it starts."
)


def dry_run_params() -> dict[str, Param]:
    """The dry-run checkbox of the trigger form (and of the Backfill form, which sends it only with
    "Override parameters on existing runs" ticked: Airflow 3.3's UI sends ``dag_run_conf: null`` otherwise)."""
    return {
        "dry_run": Param(
            False,
            # "null" too: Airflow's trigger form marks a param "required" (asterisk) unless its type
            # allows null; it still renders a checkbox (the first non-null type) and sends true/false.
            type=["boolean", "null"],
            title="Dry run (write nothing; Backfill: only with Override ticked)",
            description=DRY_RUN_HELP,
        ),
    }


def _fail(message: str) -> NoReturn:
    """Log the one-line cause as an ERROR line of its own, then fail at once (no retries)."""
    log.error("%s", message)
    raise AirflowFailException(message) from None


def _configurations(integration: Any) -> tuple[Any, list[Any]]:
    """This DAG's configuration (Variable or file, as it is now) and the other DAG's, whose keys
    this DAG's must not meet. A broken other configuration is that DAG's problem: skipped here."""
    from airflow.sdk import Variable

    from subscription_exports import config

    own = config.load_configuration(integration, variable_text=Variable.get(integration.variable_key, default=None))
    others = []
    for other in INTEGRATIONS.values():
        if other.dag_id == integration.dag_id:
            continue
        try:
            text = Variable.get(other.variable_key, default=None)
            others.append(config.load_configuration(other, variable_text=text))
        except config.ConfigError as exc:
            log.warning("keys not compared with %s's destinations: %s", other.dag_id, exc)
    return own, others


# One quick retry only: reading the Variables through the api-server can fail transiently, but any
# other error here is a configuration error (failed at once) or a bug: neither is worth the DAG's
# minutes of exponential backoff.
@task(
    task_id="load_destinations",
    doc_md=LOAD_DESTINATIONS_DOC,
    retries=1,
    retry_delay=dt.timedelta(seconds=15),
    retry_exponential_backoff=False,
)
def load_destinations(integration_id: str) -> list[str]:
    """The names of this run's destinations; fails only for what belongs to no single destination."""
    from subscription_exports import config, keys
    from subscription_exports.compat import conf

    integration = INTEGRATIONS[integration_id]
    try:
        own, others = _configurations(integration)
    except config.ConfigError as exc:
        _fail(str(exc))
    limit = conf.getint("core", "max_map_length", fallback=1024)
    too_many = map_length_problem(len(own.names), limit, own.origin)
    if too_many:
        _fail(too_many)
    _, invalid = own.valid_destinations()
    clashes = keys.configuration_collisions([own, *others])
    clashes = [c for c in clashes if integration_id in (c.a.owner.dag_id, c.b.owner.dag_id)]
    if clashes:
        for clash in clashes[1:]:
            log.error("%s", clash.message())
        more = f" (+{len(clashes) - 1} more key collision(s) above)" if len(clashes) > 1 else ""
        _fail(clashes[0].message() + more)
    for problem in invalid.values():
        log.warning("%s; only this destination's export_tables fails, the others export", problem)
    names = own.names
    # The configurations as checked: a map index that reads the same ones skips the key collision
    # analysis (tenths of a second to seconds with thousands of destinations, once per map index).
    get_current_context()["ti"].xcom_push(key=CHECKED_KEY, value=configuration_digest([own, *others]))
    log.info("%d destination(s) from %s: %s", len(names), own.origin, config._short_list(names))
    if get_current_context()["params"].get("dry_run"):
        log.info("dry run: the destinations are checked and nothing is written")
    return names


CHECKED_KEY = "checked_configurations"


def configuration_digest(configurations: list[Any]) -> str:
    """A digest of destination documents as read (entries unvalidated): equal digests, equal documents."""
    payload = [[c.integration.dag_id, c.origin, c.source_conn_id, c.entries] for c in configurations]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def map_length_problem(count: int, limit: int, origin: str) -> str | None:
    """The one-line cause when ``count`` destinations exceed Airflow's ``[core] max_map_length``.

    Airflow refuses to map a task over more items than that (the api-server rejects the pushed
    list), which would fail the whole run with a generic message after this task; checked here
    first, with a cause that says what to change.
    """
    if count <= limit:
        return None
    return (
        f"{origin}: {count} destinations, but Airflow maps export_tables over at most [core] max_map_length = "
        f"{limit} items; set AIRFLOW__CORE__MAX_MAP_LENGTH to at least {count} on every Airflow component "
        "(the api-server enforces it), then clear this task"
    )


# The label of each map index: the destination's name and its index, e.g. `acme-ios (#2)`, so the
# numbers Airflow shows where it shows no labels (the Clear dialog, `airflow tasks clear`, REST
# map_index) are findable from the name. Empty (Airflow then shows the number) until the name is set.
MAP_INDEX_TEMPLATE = "{% if destination_name %}{{ destination_name }} (#{{ ti.map_index }}){% endif %}"


def _label(context: Any, dest_name: str) -> None:
    # Shown as the map index name in the UI (map_index_template below).
    context["destination_name"] = dest_name


def _checked_client(dest: Any, ti: Any = None) -> Any:
    """An S3 client for the destination, after proving the bucket reachable and the prefix writable.

    One ERROR line names destination, connection id, bucket and the store's error code. What
    retrying cannot fix (credentials, permissions, a missing bucket, invalid settings) fails at once;
    an unreachable or busy store (connection errors, timeouts, 5xx, throttling) fails this try with
    ``DestinationUnavailable`` so the task's retries apply. ``ti`` (the running task instance) only
    adds the try numbers to the line."""
    from subscription_exports import s3

    where = f"destination '{dest.name}' (connection '{dest.conn_id}', bucket '{dest.bucket_name}')"
    try:
        client = s3.s3_client(dest.conn_id)
    except Exception as exc:
        _fail(f"{where}: cannot use the connection: {_conn_problem(exc, dest.conn_id)}")
    try:
        s3.check_destination(client, bucket=dest.bucket_name, prefix=dest.prefix)
    except Exception as exc:
        cause = f"{where}: check failed: {s3.error_code(exc)}"
        if not s3.transient(exc):
            _fail(cause)
        message = f"{cause}; the store is unreachable or busy, {_retry_outlook(ti)}"
        log.error("%s", message)
        raise s3.DestinationUnavailable(message) from None
    log.info("%s: bucket reachable, prefix '%s' writable", where, dest.prefix)
    return client


def _retry_outlook(ti: Any) -> str:
    """What happens after a retryable failure of this try, from Airflow's try counters."""
    try_number, max_tries = getattr(ti, "try_number", None), getattr(ti, "max_tries", None)
    if not isinstance(try_number, int) or not isinstance(max_tries, int):
        return "Airflow retries this task if it has retries left"
    tries = f"try {try_number} of {max(max_tries + 1, try_number)}"
    if try_number <= max_tries:
        return f"Airflow retries this task ({tries})"
    return f"no retries left ({tries}): clear this map index once the store answers"


def _conn_problem(exc: Exception, conn_id: str) -> str:
    if connection_undefined(exc):
        return f"connection '{conn_id}' is not defined"
    return " ".join(str(exc).split())[:300] or type(exc).__name__


# multiple_outputs=False: the dict return type would otherwise push each key as an XCom of its own
# (three more Execution API calls and metadata rows per destination that nothing reads).
@task(
    task_id="export_tables",
    multiple_outputs=False,
    map_index_template=MAP_INDEX_TEMPLATE,
    doc_md=EXPORT_TABLES_DOC,
)
def export_tables(destination: str, window: dict[str, str], integration_id: str) -> dict[str, Any]:
    """Validate, check and export one destination (read as it is now); one summary line and one
    Asset event per table. Returns only {destination, window, rows per table} (dry_run: true on dry runs);
    the XCom ``DELIVERY_KEY`` keeps the outcome for the deliveries page (read from the metadata database,
    without logs or S3): per table bucket, key, manifest_key and bytes, or the failed try's one-line cause."""
    # The label first: Airflow renders map_index_template from this context when the task ends, also
    # when it fails, so the map index shows the destination's name whatever fails below.
    context = get_current_context()
    _label(context, destination)
    try:
        return _export_destination(context, destination, window, integration_id)
    except Exception as exc:
        exception_for_callbacks(context, exc)  # the failure alert's cause (alerts.py)
        _record_failure(context, exc, destination)
        raise


# The XCom of a map index's outcome, read by the deliveries page: {"rows": {table: rows}, "objects": {table:
# {bucket, key, manifest_key, bytes}}} when it delivered ({"rows", "dry_run": true} on a dry run); {"cause":
# the ERROR line as logged, "table", "try_number"} when a try failed. Airflow clears a map index's XComs
# when it runs again, so it is the latest try's only. Not in the return value, whose `Done. Returned value
# was: ...` log line stays short.
DELIVERY_KEY = "delivery"


def _record_failure(context: Any, exc: BaseException, destination: str) -> None:
    """Keep the failed try's cause where a query can read it; never hides the failure itself."""
    from subscription_exports import alerts_airflow

    ti = context["ti"]
    table = context.get(alerts.FAILED_TABLE_KEY)
    cause = alerts_airflow.redact(alerts.failure_cause(exc, destination, table))
    try:
        ti.xcom_push(key=DELIVERY_KEY, value={"cause": cause, "table": table, "try_number": ti.try_number})
    except Exception as push_error:
        log.warning("cause of %s not kept for the deliveries page: %s", destination, push_error)


def _export_destination(context: Any, destination: str, window: dict[str, str], integration_id: str) -> dict[str, Any]:
    started = time.monotonic()
    from subscription_exports import loading

    loading.load_export_modules()
    from subscription_exports import config, custom_transform, exporter, keys, lineage, source
    from subscription_exports.windows import Window

    marks = {"imports": time.monotonic()}
    dry_run = bool(context["params"].get("dry_run"))
    # Airflow emits an event of every outlet asset when the task succeeds, reading the outlets at
    # that moment: none until this destination's tables are known, none at all on a dry run.
    context["task"].outlets = []
    integration = INTEGRATIONS[integration_id]
    try:
        own, others = _configurations(integration)
        dest = own.destination(destination)
    except config.ConfigError as exc:
        _fail(str(exc))
    checked = context["ti"].xcom_pull(task_ids="load_destinations", key=CHECKED_KEY, map_indexes=-1)
    if checked != configuration_digest([own, *others]):
        # Changed since load_destinations checked every key (fixed and cleared, or edited mid-run).
        clashes = keys.configuration_collisions([own, *others], involving=(integration_id, dest.name), limit=1)
        if clashes:
            _fail(clashes[0].message())
    win = Window.from_dict(window)
    marks["config"] = time.monotonic()
    client = _checked_client(dest, context["ti"])
    marks["check"] = time.monotonic()
    try:
        dialect, connection = source.connect(own.source_conn_id)
    except Exception as exc:
        where = f"destination '{dest.name}': source connection '{own.source_conn_id}'"
        if not (isinstance(exc, source.SourceError) or connection_undefined(exc)):
            log.error("%s: %s", where, _conn_problem(exc, own.source_conn_id))
            raise  # e.g. the database is down: retried
        # A configuration error (undefined connection, unsupported type): retrying cannot help.
        _fail(f"{where}: {_conn_problem(exc, own.source_conn_id)}")
    rows: dict[str, int] = {}
    objects: dict[str, dict[str, Any]] = {}
    # Lineage for a hook lineage reader (the OpenLineage provider), reported per exported table;
    # None (nothing queried, nothing reported) on dry runs and when no reader is installed.
    reporter = None if dry_run else lineage.for_export(dest.name, dialect, connection)
    try:
        for table in dest.tables:
            try:
                if dry_run:
                    rows[table] = _dry_run_table(integration, table, dest, win, dialect, connection)
                else:
                    result = _export_table(
                        context, integration, table, dest, win, dialect, connection, client, reporter
                    )
                    rows[table] = result.rows
                    objects[table] = {
                        "bucket": result.bucket, "key": result.key, "manifest_key": result.manifest_key,
                        "bytes": result.bytes,
                    }  # fmt: skip
            except custom_transform.TransformError as exc:
                # The destination's step returned what cannot be the file, or cannot run: the same
                # step on the same rows gives the same result, so no retry. Nothing of this table was written.
                context[alerts.FAILED_TABLE_KEY] = table
                _fail(str(exc))
            except Exception as exc:
                # One line of our own naming destination and table; Airflow's traceback follows.
                log.error("%s", exporter.table_error_line(exc, dest.name, table))
                context[alerts.FAILED_TABLE_KEY] = table  # named by the failure alert (alerts.py)
                raise
    finally:
        connection.close()
    marks["export"] = time.monotonic()
    _log_timings(dest.name, started, marks)
    delivery = {"rows": rows} | ({"dry_run": True} if dry_run else {"objects": objects})
    context["ti"].xcom_push(key=DELIVERY_KEY, value=delivery)
    return {"destination": dest.name, "window": win.label, "rows": rows} | ({"dry_run": True} if dry_run else {})


def _log_timings(name: str, started: float, marks: dict[str, float]) -> None:
    """One line with the seconds of each phase of this map index's body (sizing; `make bench-scale` reads it)."""
    phases, last = [], started
    for phase, at in marks.items():
        phases.append(f"{TIMED_PHASES.get(phase, phase)} {at - last:.3f} s")
        last = at
    log.info("destination %s done in %.3f s: %s", name, last - started, ", ".join(phases))


# The phases of export_tables' body, as its last log line names them (`make bench-scale` parses it).
TIMED_PHASES = {"imports": "imports", "config": "configuration", "check": "destination check", "export": "export"}


def _dry_run_table(integration: Any, table: str, dest: Any, win: Any, dialect: str, connection: Any) -> int:
    from subscription_exports import exporter

    plan = exporter.dry_run_table(
        integration=integration, spec=integration.table(table), dest=dest, window=win, dialect=dialect,
        connection=connection,
    )  # fmt: skip
    log.info(
        "dry run: destination=%s table=%s window=%s rows=%d bytes=%d sha256=%s would write s3://%s/%s and "
        "s3://%s/%s (nothing written)",
        plan.destination, plan.table, plan.window, plan.rows, plan.bytes, plan.sha256, plan.bucket, plan.key,
        plan.bucket, plan.manifest_key,
    )  # fmt: skip
    return plan.rows


def _export_table(
    context: Any,
    integration: Any,
    table: str,
    dest: Any,
    win: Any,
    dialect: str,
    connection: Any,
    client: Any,
    reporter: Any = None,
) -> Any:
    from subscription_exports import exporter

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
        result.destination, result.table, result.window, result.rows, result.bytes, result.uri, result.seconds, rate,
    )  # fmt: skip
    asset = table_asset(integration.dag_id, table)
    context["task"].outlets = [*context["task"].outlets, asset]
    context["outlet_events"][asset].extra = _event_extra(result, win, dest, context["run_id"])
    if reporter:  # after the export succeeded: the tables its SQL read, the data object it wrote
        reporter.exported(source_tables=integration.table(table).source_tables, bucket=result.bucket, key=result.key)
    return result


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
    """Wire the per-destination task: one ``export_tables`` map index per loaded destination name.

    The destinations load after the window: a bad date range fails the run before any destination
    is touched (even by the write probe), and ``export_tables`` is then never expanded, so no map
    index of it can be ``upstream_failed`` (such a map index would show a number, not a name).
    """
    names = load_destinations(integration_id)
    window >> names

    @task_group(group_id="destination")
    def per_destination(destination: Any) -> None:
        tables = INTEGRATIONS[integration_id].table_names
        export_tables.override(
            outlets=[table_asset(integration_id, t) for t in tables],
            **export_task_settings(),
            **alerts.export_task_callbacks(),
        )(destination, window, integration_id=integration_id)

    per_destination.expand(destination=names)

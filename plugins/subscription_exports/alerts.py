"""Alerts: a destination's final failure, its recovery, a per-run summary, a late delivery.

Sent through an Airflow notifier chosen in the top-level ``alerts:`` section of the destinations file
or Variable (docs/alerts.md): the smtp provider's ``SmtpNotifier`` by default, any notifier class by
its dotted name. Credentials live only in the notifier's connection. Without an ``alerts:`` section
nothing is sent and nothing is recorded.

When and where each alert is sent:

* **failure**: ``export_tables``' ``on_failure_callback`` (the task process, after the map index
  failed for the last time: retries exhausted or a fail-fast error; Airflow runs
  ``on_retry_callback`` instead while tries are left);
* **recovery**: ``export_tables``' ``on_success_callback`` when the destination's failure of the
  same run (so the same day or range) is on record;
* **summary**: the DAG's ``on_success_callback`` / ``on_failure_callback`` (the dag-processor, once
  each time the run ends, also after a cleared map index ends it again);
* **late**: a Deadline Alert (Airflow 3.1+) measured from the run's logical date, default D+1 08:00
  UTC; its callback runs in the triggerer.

State (which destination's failure is on record, with its cause) is an XCom per failed destination
on the run's ``load_destinations`` instance: clearing a map index of ``export_tables`` clears that
map index's own XComs only, so the record is still there when it succeeds. No other storage.

A notifier that fails (SMTP down, wrong webhook) logs one WARNING line; the export's outcome and
the task's state never change. Dry runs send nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import importlib
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from subscription_exports.integrations import INTEGRATIONS

log = logging.getLogger(__name__)

EXPORT_TASK = "destination.export_tables"
LOAD_TASK = "load_destinations"
WINDOW_TASK = "resolve_window"
FAILED_TABLE_KEY = "alert_failed_table"  # set in the task context by export_tables while a table exports
MARKER_PREFIX = "alert_failed__"
DEADLINE_ENV = "SUBSCRIPTION_EXPORTS_DELIVERY_DEADLINE"
DEFAULT_DEADLINE = "D+1 08:00"

# Known notifiers: (class, subject field or None, body field, recipients field or None, HTML body).
KNOWN_NOTIFIERS: dict[str, tuple[str, str | None, str, str | None, bool]] = {
    "smtp": ("airflow.providers.smtp.notifications.smtp.SmtpNotifier", "subject", "html_content", "to", True),
    "slack": ("airflow.providers.slack.notifications.slack.SlackNotifier", None, "text", None, False),
    "slack_webhook": (
        "airflow.providers.slack.notifications.slack_webhook.SlackWebhookNotifier",
        None,
        "text",
        None,
        False,
    ),
}
_SECRET_KWARG = re.compile(r"pass(word)?|secret|token|api_?key|webhook_url|credential", re.IGNORECASE)
_SUMMARY_MODES = ("on_failure", "always", "never")


# -- configuration -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DestinationOverride:
    extra_recipients: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertSettings:
    """The validated ``alerts:`` section."""

    notifier: str  # dotted class path
    kwargs: dict[str, Any]
    subject_field: str | None
    body_field: str
    recipients_field: str | None
    html: bool
    failure: bool = True
    recovery: bool = True
    summary: str = "on_failure"
    late: bool = True
    destinations: dict[str, DestinationOverride] = field(default_factory=dict)

    def notifier_for(self, destination: str | None = None) -> tuple[type, dict[str, Any]]:
        """The notifier class and its keyword arguments (a destination's overrides applied)."""
        kwargs = dict(self.kwargs)
        override = self.destinations.get(destination or "")
        if override:
            kwargs.update(override.kwargs)
            if override.extra_recipients and self.recipients_field:
                current = kwargs.get(self.recipients_field) or []
                current = [current] if isinstance(current, str) else list(current)
                kwargs[self.recipients_field] = current + [r for r in override.extra_recipients if r not in current]
        return _import_class(self.notifier), kwargs

    def describe(self) -> str:
        """One line for `config check`."""
        kinds = [k for k in ("failure", "recovery") if getattr(self, k)]
        if self.summary != "never":
            kinds.append(f"summary ({self.summary.replace('_', ' ')})")
        if self.late:
            kinds.append("late")
        to = self.kwargs.get(self.recipients_field) if self.recipients_field else None
        to_text = f" to {', '.join([to] if isinstance(to, str) else to)}" if to else ""
        more = f"; overrides for {', '.join(self.destinations)}" if self.destinations else ""
        return f"{', '.join(kinds) or 'nothing'} via {self.notifier.rsplit('.', 1)[-1]}{to_text}{more}"


class AlertConfigError(ValueError):
    """One line naming the origin and the field of the ``alerts:`` section."""


def _import_class(path: str) -> type:
    module, _, name = path.rpartition(".")
    if not module:
        raise ImportError(f"{path!r} is not a dotted class path")
    return getattr(importlib.import_module(module), name)


def alerts_problems(raw: Any, *, origin: str, destination_names: list[str] | None = None) -> list[str]:
    """Every problem of an ``alerts:`` section, one line each (none for a missing section)."""
    problems: list[str] = []
    try:
        parse_alerts(raw, origin=origin, destination_names=destination_names, collect=problems)
    except AlertConfigError as exc:
        return problems or [str(exc)]
    return problems


def parse_alerts(
    raw: Any, *, origin: str, destination_names: list[str] | None = None, collect: list[str] | None = None
) -> AlertSettings | None:
    """The validated section, None when there is none; AlertConfigError (one line) on the first problem,
    or, with `collect`, every problem appended there and AlertConfigError at the end."""
    if raw is None:
        return None
    problems: list[str] = [] if collect is None else collect
    where = f"{origin}: alerts"

    def problem(field_name: str, text: str) -> None:
        line = f"{where}: field '{field_name}': {text}"
        if collect is None:
            raise AlertConfigError(line)
        problems.append(line)

    if not isinstance(raw, dict):
        raise AlertConfigError(f"{where}: must be a mapping (notifier, kwargs, failure, recovery, summary, ...)")
    allowed = {"notifier", "kwargs", "subject_field", "body_field", "recipients_field", "html"}
    allowed |= {"failure", "recovery", "summary", "late", "destinations"}
    for key in raw:
        if key not in allowed:
            problem(str(key), f"unknown field; allowed: {sorted(allowed)}")
    notifier = raw.get("notifier", "smtp")
    known = KNOWN_NOTIFIERS.get(notifier) if isinstance(notifier, str) else None
    if not isinstance(notifier, str) or not notifier:
        problem("notifier", f"a notifier name ({', '.join(KNOWN_NOTIFIERS)}) or a dotted class path")
        notifier = "smtp"
        known = KNOWN_NOTIFIERS["smtp"]
    path, subject_field, body_field, recipients_field, as_html = known or (notifier, None, None, None, False)
    try:
        cls: Any = _import_class(path)
    except Exception as exc:  # ImportError, AttributeError, errors raised while importing
        problem("notifier", f"cannot import {path}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        cls = None
    if cls is not None and not callable(getattr(cls, "notify", None)):
        problem("notifier", f"{path} is not an Airflow notifier (no notify method)")
    kwargs = raw.get("kwargs", {})
    if not isinstance(kwargs, dict):
        problem("kwargs", "must be a mapping of the notifier's keyword arguments")
        kwargs = {}
    for key in kwargs:
        if _SECRET_KWARG.search(str(key)):
            problem(f"kwargs.{key}", "credentials belong in the notifier's Airflow connection, not here")
    for name in ("subject_field", "body_field", "recipients_field"):
        value = raw.get(name)
        if value is not None and (not isinstance(value, str) or not value.isidentifier()):
            problem(name, "must name one keyword argument of the notifier")
    subject_field = raw.get("subject_field", subject_field)
    body_field = raw.get("body_field", body_field)
    recipients_field = raw.get("recipients_field", recipients_field)
    if not body_field:
        problem("body_field", f"name the keyword argument of {path} that takes the message text (e.g. text)")
        body_field = "text"
    as_html = raw.get("html", as_html)
    if recipients_field == "to" and known and notifier == "smtp" and not kwargs.get("to"):
        problem("kwargs.to", "give at least one recipient address for the e-mails")
    flags = {}
    for name in ("failure", "recovery", "late", "html"):
        value = raw.get(name, True if name != "html" else as_html)
        if not isinstance(value, bool):
            problem(name, "must be true or false")
            value = bool(value)
        flags[name] = value
    summary = raw.get("summary", "on_failure")
    if summary not in _SUMMARY_MODES:
        problem("summary", f"must be one of {list(_SUMMARY_MODES)}")
        summary = "on_failure"
    overrides: dict[str, DestinationOverride] = {}
    per_dest = raw.get("destinations", {}) or {}
    if not isinstance(per_dest, dict):
        problem("destinations", "must map destination names to their overrides (extra_recipients, kwargs)")
        per_dest = {}
    for name, entry in per_dest.items():
        at = f"destinations.{name}"
        if destination_names is not None and name not in destination_names:
            problem(at, "no destination of this name is configured")
        if not isinstance(entry, dict):
            problem(at, "must be a mapping (extra_recipients, kwargs)")
            continue
        for key in entry:
            if key not in ("extra_recipients", "kwargs"):
                problem(f"{at}.{key}", "unknown field; allowed: ['extra_recipients', 'kwargs']")
        extra = entry.get("extra_recipients", [])
        extra = [extra] if isinstance(extra, str) else extra
        if not isinstance(extra, list) or not all(isinstance(r, str) and r.strip() for r in extra):
            problem(f"{at}.extra_recipients", "must be a list of recipients")
            extra = []
        if extra and not recipients_field:
            problem(f"{at}.extra_recipients", f"{path} takes no recipient list; set recipients_field or use kwargs")
        dest_kwargs = entry.get("kwargs", {})
        if not isinstance(dest_kwargs, dict):
            problem(f"{at}.kwargs", "must be a mapping of the notifier's keyword arguments")
            dest_kwargs = {}
        for key in dest_kwargs:
            if _SECRET_KWARG.search(str(key)):
                problem(f"{at}.kwargs.{key}", "credentials belong in the notifier's Airflow connection, not here")
        overrides[str(name)] = DestinationOverride(tuple(extra), dict(dest_kwargs))
    if problems:
        raise AlertConfigError(problems[0])
    return AlertSettings(
        notifier=path,
        kwargs=dict(kwargs),
        subject_field=subject_field,
        body_field=body_field,
        recipients_field=recipients_field,
        html=flags["html"],
        failure=flags["failure"],
        recovery=flags["recovery"],
        summary=summary,
        late=flags["late"],
        destinations=overrides,
    )


def parse_deadline(text: str) -> dt.timedelta | None:
    """``D+N HH:MM`` (day N after the exported day D, at HH:MM UTC), a duration after the run's logical
    date (``90m``, ``2h``, ``1d8h``, ``45s``), or ``off`` (None). ValueError (one line) otherwise."""
    value = text.strip()
    if value.lower() in ("off", "none", "false", "0"):
        return None
    if m := re.fullmatch(r"D\+(\d+)\s+(\d{1,2}):(\d{2})", value):
        days, hours, minutes = (int(g) for g in m.groups())
        if hours < 24 and minutes < 60:
            return dt.timedelta(days=days, hours=hours, minutes=minutes)
    elif (m := re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", value)) and any(m.groups()):
        d, h, mi, s = (int(g or 0) for g in m.groups())
        return dt.timedelta(days=d, hours=h, minutes=mi, seconds=s)
    raise ValueError(
        f"{DEADLINE_ENV}={text!r}: expected 'D+N HH:MM' (e.g. {DEFAULT_DEADLINE!r}), a duration after the run's "
        "logical date (e.g. '90m', '1d8h') or 'off'"
    )


def deadline_interval(dag_id: str, environ: dict[str, str] | None = None) -> dt.timedelta | None:
    """The delivery deadline of `dag_id` after its run's logical date (D 00:00 for day D), from
    ``SUBSCRIPTION_EXPORTS_DELIVERY_DEADLINE_<DAG_ID>`` or ``SUBSCRIPTION_EXPORTS_DELIVERY_DEADLINE``
    (read at parse time like any Airflow setting: Airflow computes a run's deadline when it creates it)."""
    env = os.environ if environ is None else environ
    text = env.get(f"{DEADLINE_ENV}_{dag_id.upper()}") or env.get(DEADLINE_ENV) or DEFAULT_DEADLINE
    return parse_deadline(text)


# -- wiring (used by the DAG files and tasks.py) --------------------------------------------------------


def dag_alert_args(dag_id: str) -> dict[str, Any]:
    """The ``@dag`` arguments of the alerts: run-end callbacks (summary) and the delivery deadline."""
    from subscription_exports import alerts_airflow

    args: dict[str, Any] = {"on_success_callback": run_finished, "on_failure_callback": run_finished}
    from subscription_exports.compat import run_deadlines_supported

    interval = deadline_interval(dag_id)
    if interval is not None and run_deadlines_supported() and not alerts_airflow.parsed_by_dags_test():
        args["deadline"] = alerts_airflow.deadline_alert(
            interval=interval, callback=delivery_late, kwargs={"dag_id": dag_id}
        )
    return args


def export_task_callbacks() -> dict[str, Any]:
    """The ``export_tables`` callbacks: final failure and recovery alerts."""
    return {"on_failure_callback": export_failed, "on_success_callback": export_succeeded}


# -- sending ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    subject: str
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _settings(dag_id: str) -> tuple[AlertSettings | None, Any]:
    """(alerts settings or None, the configuration) as they are now (Variable or file)."""
    from subscription_exports import alerts_airflow, config

    integration = INTEGRATIONS[dag_id]
    configuration = config.load_configuration(
        integration, variable_text=alerts_airflow.variable_text(integration.variable_key)
    )
    # Overrides of destinations that are gone are ignored here (config check lists them): removing a
    # destination must not silence every alert.
    settings = parse_alerts(configuration.alerts, origin=configuration.origin)
    return settings, configuration


def deliver(settings: AlertSettings, message: Message, *, destination: str | None, context: Any, what: str) -> bool:
    """Send `message` through the configured notifier; on any error one WARNING line, never raises."""
    from subscription_exports import alerts_airflow

    try:
        cls, kwargs = settings.notifier_for(destination)
        subject = alerts_airflow.redact(message.subject)
        text = alerts_airflow.redact(message.text)
        if settings.html:
            body = f"<pre>{html.escape(text)}</pre>"
        else:
            body = text if settings.subject_field else f"{subject}\n{text}"
        if settings.subject_field:
            kwargs[settings.subject_field] = subject
        kwargs[settings.body_field] = body
        notifier = cls(**kwargs)
        # notify(), not __call__: our text is final and must not go through Jinja (a cause may hold "{{").
        if settings.html and settings.notifier == KNOWN_NOTIFIERS["smtp"][0]:
            alerts_airflow.notify_with_text_part(notifier, text, context if context is not None else {})
        else:
            notifier.notify(context if context is not None else {})
    except Exception as exc:
        cause = alerts_airflow.redact(" ".join(f"{type(exc).__name__}: {exc}".split())[:300])
        log.warning("alert not sent (%s): %s: %s", what, settings.notifier.rsplit(".", 1)[-1], cause)
        return False
    log.info("alert sent (%s): %s", what, subject)
    return True


def _one_line(text: str, limit: int = 1000) -> str:
    return " ".join(str(text).split())[:limit]


def failure_cause(exc: BaseException | None, destination: str, table: str | None) -> str:
    """The one-line cause as export_tables logged it."""
    from subscription_exports import alerts_airflow, exporter

    if exc is None:
        return "the task failed without an exception (killed, or its heartbeat was lost); see the log"
    if alerts_airflow.is_fail_fast(exc):
        return _one_line(str(exc))
    if table:
        return exporter.table_error_line(exc, destination, table)
    return _one_line(str(exc) if isinstance(exc, exporter.ExportError) else f"{type(exc).__name__}: {exc}")


def _window_label(dag_id: str, run_id: str) -> str | None:
    from subscription_exports import alerts_airflow
    from subscription_exports.windows import Window

    window = alerts_airflow.xcom_get(dag_id=dag_id, run_id=run_id, task_id=WINDOW_TASK, key="return_value")
    return Window.from_dict(window).label if isinstance(window, dict) else None


def _is_dry_run(context: Any) -> bool:
    params = context.get("params") or {}
    if isinstance(params, dict) and params.get("dry_run"):
        return True
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) if not isinstance(dag_run, dict) else dag_run.get("conf")
    return bool(isinstance(conf, dict) and conf.get("dry_run"))


def _destination_of(context: Any, ti: Any) -> str:
    name = context.get("destination_name") or getattr(ti, "rendered_map_index", None)
    if name:
        return str(name)
    from subscription_exports import alerts_airflow

    names = alerts_airflow.xcom_get(dag_id=ti.dag_id, run_id=ti.run_id, task_id=LOAD_TASK, key="return_value")
    return str(names[ti.map_index]) if isinstance(names, list) and 0 <= ti.map_index < len(names) else str(ti.map_index)


def _guarded(what: str, func: Any, *args: Any) -> None:
    """Run an alert callback; any error (a bad alerts section, the API) is one WARNING line."""
    try:
        func(*args)
    except Exception as exc:
        log.warning("alert not sent (%s): %s", what, _one_line(f"{type(exc).__name__}: {exc}", 400))


def export_failed(context: Any) -> None:
    """``on_failure_callback`` of export_tables: the map index failed for the last time."""
    _guarded("failure", _export_failed, context)


def _export_failed(context: Any) -> None:
    from subscription_exports import alerts_airflow

    if _is_dry_run(context):
        return
    ti = context["ti"]
    settings, _ = _settings(ti.dag_id)
    if settings is None:
        return
    destination = _destination_of(context, ti)
    table = context.get(FAILED_TABLE_KEY)
    cause = alerts_airflow.redact(failure_cause(context.get("exception"), destination, table))
    url = alerts_airflow.log_url(ti)
    day = _window_label(ti.dag_id, ti.run_id) or "(window not resolved)"
    record = {"cause": cause, "table": table, "try_number": ti.try_number, "log_url": url}
    try:  # the record the recovery and the summary read; the alert goes out without it too
        if not alerts_airflow.can_write_xcom():
            raise RuntimeError("the dag-processor (the task process died) cannot write XComs")
        alerts_airflow.xcom_set(
            dag_id=ti.dag_id, run_id=ti.run_id, task_id=LOAD_TASK, key=MARKER_PREFIX + destination, value=record
        )
    except Exception as exc:
        log.warning("failure of %s not recorded for its recovery message: %s", destination, _one_line(str(exc), 300))
    if not settings.failure:
        return
    message = Message(
        subject=f"[{ti.dag_id}] FAILED: {destination} for {day}",
        lines=[
            f"DAG: {ti.dag_id}",
            f"Run: {ti.run_id}",
            f"Day: {day}",
            f"Destination: {destination}",
            f"Table: {table or '(none: failed before exporting a table)'}",
            f"Cause: {cause}",
            f"Try: {ti.try_number} (no retries left)",
            f"Log: {url}",
            "",
            "Fix the cause (destinations Variable or file, connection, bucket), then clear this map index.",
        ],
    )
    deliver(settings, message, destination=destination, context=context, what=f"failure of {destination}")


def export_succeeded(context: Any) -> None:
    """``on_success_callback`` of export_tables: a recovery when this destination's failure is on record."""
    _guarded("recovery", _export_succeeded, context)


def _export_succeeded(context: Any) -> None:
    from subscription_exports import alerts_airflow

    ti = context["ti"]
    if (ti.try_number or 1) <= 1 or _is_dry_run(context):
        return  # a first try cannot follow a failure: no lookup at all
    destination = _destination_of(context, ti)
    key = MARKER_PREFIX + destination
    record = alerts_airflow.xcom_get(dag_id=ti.dag_id, run_id=ti.run_id, task_id=LOAD_TASK, key=key)
    if not isinstance(record, dict):
        return
    settings, _ = _settings(ti.dag_id)
    alerts_airflow.xcom_delete(dag_id=ti.dag_id, run_id=ti.run_id, task_id=LOAD_TASK, key=key)
    if settings is None or not settings.recovery:
        return
    day = _window_label(ti.dag_id, ti.run_id) or "(window not resolved)"
    message = Message(
        subject=f"[{ti.dag_id}] RECOVERED: {destination} for {day}",
        lines=[
            f"DAG: {ti.dag_id}",
            f"Run: {ti.run_id}",
            f"Day: {day}",
            f"Destination: {destination}",
            f"Delivered on try {ti.try_number}; it had failed on try {record.get('try_number')} with:",
            f"Cause: {record.get('cause')}",
            f"Log: {alerts_airflow.log_url(ti)}",
        ],
    )
    deliver(settings, message, destination=destination, context=context, what=f"recovery of {destination}")


def run_finished(context: Any) -> None:
    """DAG ``on_success_callback`` / ``on_failure_callback``: the per-run summary."""
    _guarded("summary", _run_finished, context)


def _run_finished(context: Any) -> None:
    from subscription_exports import alerts_airflow

    dag_id = context["dag"].dag_id
    run_id = context["run_id"]
    if _is_dry_run(context):
        return
    settings, _ = _settings(dag_id)
    if settings is None or settings.summary == "never":
        return
    names = alerts_airflow.xcom_get(dag_id=dag_id, run_id=run_id, task_id=LOAD_TASK, key="return_value")
    day = _window_label(dag_id, run_id) or "(window not resolved)"
    lines = [f"DAG: {dag_id}", f"Run: {run_id}", f"Day: {day}"]
    if not isinstance(names, list):
        states = {
            task: alerts_airflow.task_states(dag_id=dag_id, run_id=run_id, task_id=task).get(-1)
            for task in (WINDOW_TASK, LOAD_TASK)
        }
        first_failed = next((task for task, state in states.items() if state == "failed"), LOAD_TASK)
        subject = f"[{dag_id}] {day}: no destination exported"
        lines += [
            "No destination was exported: the run ended before export_tables: "
            + ", ".join(f"{task} {_state_text(state)}" for task, state in states.items()),
            f"The cause is the ERROR line of the {first_failed} log.",
        ]
        deliver(settings, Message(subject, lines), destination=None, context=context, what="summary")
        return
    late = late_line(dag_id, context.get("dag_run")) if settings.late else None
    if late:
        lines.append(late)
    states = alerts_airflow.task_states(dag_id=dag_id, run_id=run_id, task_id=EXPORT_TASK)
    delivered = [n for i, n in enumerate(names) if states.get(i) == "success"]
    failed = [n for i, n in enumerate(names) if states.get(i) in ("failed", "upstream_failed")]
    other = [(n, states.get(i)) for i, n in enumerate(names) if n not in delivered and n not in failed]
    if not failed and not other and not late and settings.summary != "always":
        return
    lines.append(f"Delivered: {len(delivered)} of {len(names)} destination(s)")
    if failed:
        lines.append("Failed:")
        for name in failed:
            record = alerts_airflow.xcom_get(dag_id=dag_id, run_id=run_id, task_id=LOAD_TASK, key=MARKER_PREFIX + name)
            cause = record.get("cause") if isinstance(record, dict) else "(no cause recorded; see its log)"
            lines.append(f"- {name}: {cause}")
    for name, state in other:
        lines.append(f"- {name}: not delivered ({state or 'not run'})")
    if failed or other:
        subject = f"[{dag_id}] {day}: {len(delivered)} of {len(names)} delivered, {len(failed) + len(other)} failed"
    else:
        subject = f"[{dag_id}] {day}: all {len(names)} destination(s) delivered" + (", late" if late else "")
    deliver(settings, Message(subject, lines), destination=None, context=context, what="summary")


async def delivery_late(dag_id: str, context: dict[str, Any] | None = None, **_: Any) -> None:
    """Deadline Alert callback (the triggerer): which destinations are missing for the run's day."""
    # The Task SDK calls below are synchronous: run them in a thread, off the triggerer's event loop.
    await asyncio.to_thread(_guarded, "late delivery", _delivery_late, dag_id, context or {})


def _delivery_late(dag_id: str, context: dict[str, Any]) -> None:
    from subscription_exports import alerts_airflow

    dag_run = context.get("dag_run") or {}
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id")
    deadline = _as_datetime((context.get("deadline") or {}).get("deadline_time"))
    if not run_id or _is_dry_run({"dag_run": dag_run}):
        return
    run_type = str(dag_run.get("run_type") or "")
    run_after = _as_datetime(dag_run.get("run_after") or dag_run.get("queued_at"))
    if run_type == "backfill" or (
        run_type == "manual" and deadline is not None and run_after is not None and run_after >= deadline
    ):
        log.info("delivery deadline of %s passed: not alerted (a backfill or a re-export started after it)", run_id)
        return
    if created_after_deadline(run_type, _as_datetime(dag_run.get("queued_at")), deadline):
        # e.g. the run the scheduler creates when the DAG is unpaused late: Airflow fires its deadline the
        # moment the run starts, before it could deliver anything. Its summary says it was late instead.
        log.info("delivery deadline of %s passed before the run was created: its summary says so", run_id)
        return
    settings, configuration = _settings(dag_id)
    if settings is None or not settings.late:
        return
    names = alerts_airflow.xcom_get(dag_id=dag_id, run_id=run_id, task_id=LOAD_TASK, key="return_value")
    states = alerts_airflow.task_states(dag_id=dag_id, run_id=run_id, task_id=EXPORT_TASK)
    if not isinstance(names, list):
        names, states = configuration.names, {}
    missing = [(n, states.get(i)) for i, n in enumerate(names) if states.get(i) != "success"]
    if not missing:
        return
    day = _window_label(dag_id, run_id) or _planned_window(dag_run)
    when = deadline.strftime("%Y-%m-%d %H:%M UTC") if deadline else "its deadline"
    lines = [
        f"DAG: {dag_id}",
        f"Run: {run_id} ({dag_run.get('state') or 'unknown state'})",
        f"Day: {day}",
        f"Deadline: {when}",
        f"Missing: {len(missing)} of {len(names)} destination(s)",
    ]
    lines += [f"- {name}: {_state_text(state)}" for name, state in missing]
    subject = f"[{dag_id}] LATE: {len(missing)} of {len(names)} destination(s) not delivered for {day} by {when}"
    deliver(settings, Message(subject, lines), destination=None, context=None, what=f"late delivery of {run_id}")


def created_after_deadline(run_type: str, created: dt.datetime | None, deadline: dt.datetime | None) -> bool:
    """A scheduled run created when its delivery deadline had already passed (the DAG was paused, or the
    scheduler down): late from its first second. Backfills and manual runs are catch-ups by intent."""
    return run_type == "scheduled" and created is not None and deadline is not None and created >= deadline


def late_line(dag_id: str, dag_run: Any, environ: dict[str, str] | None = None) -> str | None:
    """The summary's line for a scheduled run created after its deadline (which sent no LATE message)."""
    get = dag_run.get if isinstance(dag_run, dict) else lambda name: getattr(dag_run, name, None)
    run_type = str(getattr(get("run_type"), "value", get("run_type")) or "")
    logical, created = _as_datetime(get("logical_date")), _as_datetime(get("queued_at"))
    try:
        interval = deadline_interval(dag_id, environ)
    except ValueError:
        return None
    deadline = logical + interval if logical is not None and interval is not None else None
    if not created_after_deadline(run_type, created, deadline):
        return None
    assert created is not None and deadline is not None
    return (
        f"Late: the run was created at {created.strftime('%Y-%m-%d %H:%M UTC')}, after its delivery deadline "
        f"{deadline.strftime('%Y-%m-%d %H:%M UTC')} (no LATE message was sent for it)"
    )


def _state_text(state: str | None) -> str:
    return {None: "not started", "failed": "failed", "upstream_failed": "not started (upstream failed)"}.get(
        state, str(state).replace("_", " ")
    )


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _planned_window(dag_run: dict[str, Any]) -> str:
    """The window a run that has not resolved it yet will export (what resolve_window will compute)."""
    from subscription_exports.windows import DEFAULT_RUN_AT, resolve

    start, end = _as_datetime(dag_run.get("data_interval_start")), _as_datetime(dag_run.get("data_interval_end"))
    run_after = _as_datetime(dag_run.get("run_after")) or dt.datetime.now(dt.UTC)
    try:
        return resolve(
            run_type=str(dag_run.get("run_type") or ""),
            params=dag_run.get("conf") or {},
            logical_date=_as_datetime(dag_run.get("logical_date")),
            run_after=run_after,
            data_interval=(start, end) if start and end else None,
            now=dt.datetime.now(dt.UTC),
            run_at=DEFAULT_RUN_AT,
        ).label
    except Exception as exc:
        return f"(window not resolved: {_one_line(str(exc), 200)})"

"""Every Airflow API the alerts touch, in one place (alerts.py imports nothing else of Airflow).

Checked against Airflow 3.3.2 (installed) and the 3.1 documentation:

* XComs from any task of the run, and writing/deleting one of another task (the alert markers live
  on the run's ``load_destinations`` instance): ``XCom.get_one/set/delete`` of the Task SDK
  (``airflow.sdk.execution_time.xcom.XCom``, the configured backend; 3.0+). The Execution API
  allows it in single-team deployments (multi-team: only within the team, which is ours).
* Task states of a run: ``RuntimeTaskInstance.get_task_states`` (3.0+), keys ``<task_id>_<map_index>``.
* The UI link of a map index's log: ``ti.log_url`` (Task SDK) when present, else the same Airflow 3
  UI route built from ``[api] base_url``.
* Deadline Alerts: ``DeadlineAlert``, ``DeadlineReference.DAGRUN_LOGICAL_DATE``, ``AsyncCallback``
  (3.1: ``airflow.sdk.definitions.deadline``; 3.2+: also ``airflow.sdk``). The callback runs in the
  triggerer and receives ``context={"dag_run": {...}, "deadline": {...}}`` (3.1+).
* Secrets known to this process are masked in messages with the Task SDK's secrets masker.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import Any
from urllib.parse import quote


def xcom_get(*, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1) -> Any:
    from airflow.sdk.execution_time.xcom import XCom

    return XCom.get_one(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index)


def xcom_set(*, dag_id: str, run_id: str, task_id: str, key: str, value: Any, map_index: int = -1) -> None:
    from airflow.sdk.execution_time.xcom import XCom

    XCom.set(key=key, value=value, dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index)


def can_write_xcom() -> bool:
    """False in the dag-processor, which runs a task's failure callback when the task process died: it
    serves no XCom writes to callbacks (Airflow 3.3: ``SetXCom`` is not among its requests; before the
    fix of apache/airflow#72008 such a request even blocks the parser until its timeout)."""
    import sys

    return "airflow.dag_processing.processor" not in sys.modules


def xcom_delete(*, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1) -> None:
    from airflow.sdk.execution_time.xcom import XCom

    XCom.delete(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index)


def task_states(*, dag_id: str, run_id: str, task_id: str) -> dict[int, str | None]:
    """{map_index: state} of every instance of `task_id` in the run (-1 for an unmapped one)."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    found = RuntimeTaskInstance.get_task_states(dag_id=dag_id, task_ids=[task_id], run_ids=[run_id])
    states: dict[int, str | None] = {}
    for name, state in (found.get(run_id) or {}).items():
        if name == task_id:
            states[-1] = state
        elif name.startswith(task_id + "_") and name[len(task_id) + 1 :].isdigit():
            states[int(name[len(task_id) + 1 :])] = state
    return states


def log_url(ti: Any) -> str:
    """The UI page of this try of this (map index of a) task, with its log."""
    url = getattr(ti, "log_url", None)
    if isinstance(url, str) and url:
        return url
    from subscription_exports.compat import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
    mapped = f"/mapped/{ti.map_index}" if getattr(ti, "map_index", -1) is not None and ti.map_index >= 0 else ""
    return f"{base}/dags/{ti.dag_id}/runs/{quote(ti.run_id)}/tasks/{ti.task_id}{mapped}?try_number={ti.try_number}"


def is_fail_fast(exc: BaseException | None) -> bool:
    from subscription_exports.compat import AirflowFailException

    return isinstance(exc, AirflowFailException)


def redact(text: str) -> str:
    """`text` with every secret this process's masker knows replaced (connection passwords read here)."""
    try:
        from airflow.sdk._shared.secrets_masker import redact as _redact
    except ImportError:  # older Task SDK layout
        try:
            from airflow.sdk.execution_time.secrets_masker import redact as _redact  # type: ignore[no-redef]
        except ImportError:
            return text
    return str(_redact(text))


def parsed_by_dags_test(argv: list[str] | None = None) -> bool:
    """True when ``airflow dags test`` parses the DAG (in its own process): the DAG then gets no deadline.

    Airflow 3.3.2 fails such a test run when it succeeds: ``DagRun.update_state`` looks the DAG's
    deadline alerts up by id (``DeadlineAlertModel.get_by_id(alert_id) for alert_id in dag.deadline``),
    but the DAG ``dags test`` runs is not the serialized one and holds the ``DeadlineAlert`` objects
    (``StatementError: 'dict' object has no attribute 'hex'``, exit code 1 after a good export). A test
    run has no delivery to be late for. Remove when a fixed Airflow is the oldest supported.
    ``dag.test()`` from Python meets the same bug: set ``SUBSCRIPTION_EXPORTS_DELIVERY_DEADLINE=off``.
    """
    argv = sys.argv if argv is None else argv
    return len(argv) >= 3 and os.path.basename(argv[0]) == "airflow" and argv[1:3] == ["dags", "test"]


def deadline_alert(*, interval: dt.timedelta, callback: Any, kwargs: dict[str, Any]) -> Any:
    """A Deadline Alert measured from the run's logical date (Airflow 3.1+)."""
    try:
        from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference
    except ImportError:  # Airflow 3.1
        from airflow.sdk.definitions.deadline import (  # type: ignore[no-redef]
            AsyncCallback,
            DeadlineAlert,
            DeadlineReference,
        )
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=interval,
        callback=AsyncCallback(callback, kwargs=kwargs),
    )


def variable_text(key: str) -> str | None:
    from airflow.sdk import Variable

    return Variable.get(key, default=None)


def notify_with_text_part(notifier: Any, text: str, context: Any) -> None:
    """``notifier.notify(context)``, an ``SmtpNotifier``'s e-mail carrying ``text`` as a text/plain part
    beside its HTML one (multipart/alternative: mail clients that show no HTML, and filters, read the text).

    The smtp provider (2.x to 3.2, checked with the versions Airflow 3.1.8 and 3.3.2 install) builds the
    message in ``SmtpHook._build_mime_message`` with one text/html part and offers no text part: that one
    call of the notifier's own hook is wrapped. Another provider layout sends the HTML part alone."""
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    hook = getattr(notifier, "hook", None)
    build = getattr(hook, "_build_mime_message", None)
    if build is None:
        notifier.notify(context)
        return

    def build_with_text(*args: Any, **kwargs: Any) -> Any:
        message, recipients = build(*args, **kwargs)
        parts = message.get_payload()
        html_part = next((p for p in parts if p.get_content_type() == "text/html"), None)
        if html_part is not None:
            alternative = MIMEMultipart("alternative")
            alternative.attach(MIMEText(text, "plain", "utf-8"))
            alternative.attach(html_part)
            parts[parts.index(html_part)] = alternative
        return message, recipients

    hook._build_mime_message = build_with_text
    try:
        notifier.notify(context)
    finally:
        del hook._build_mime_message

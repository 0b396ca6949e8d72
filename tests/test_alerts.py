"""The `alerts:` section (validation, one line per problem, `config check`), the delivery deadline setting,
and sending through the smtp provider's SmtpNotifier to a real SMTP server on loopback (aiosmtpd).

The DAG-run behaviour (which alert is sent when, on a running scheduler) is in test_alerts_system.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

import airflow
import pytest
from airflow_cluster import free_port
from conftest import SmtpSink

from subscription_exports import alerts, config
from subscription_exports.config_check import main as config_check
from subscription_exports.exporter import ExportError
from subscription_exports.integrations import S3_EXPORT

AIRFLOW_MINOR = tuple(int(part) for part in airflow.__version__.split(".")[:2])

ORIGIN = "destinations file include/destinations/s3_export.yaml"
DEST = {"name": "acme-ios", "conn_id": "exports_s3", "bucket": "adapty-events", "app_id": "com.acme.ios"}
SMTP = {"kwargs": {"smtp_conn_id": "smtp_alerts", "to": ["data@example.com"]}}


def problems(raw: object, names: list[str] | None = None) -> list[str]:
    return alerts.alerts_problems(raw, origin=ORIGIN, destination_names=names)


def test_no_section_means_no_alerts() -> None:
    assert alerts.parse_alerts(None, origin=ORIGIN) is None
    assert problems(None) == []


def test_smtp_is_the_default_notifier() -> None:
    settings = alerts.parse_alerts(SMTP, origin=ORIGIN)
    assert settings is not None
    assert settings.notifier == "airflow.providers.smtp.notifications.smtp.SmtpNotifier"
    assert (settings.subject_field, settings.body_field, settings.recipients_field, settings.html) == (
        "subject",
        "html_content",
        "to",
        True,
    )
    assert (settings.failure, settings.recovery, settings.summary, settings.late) == (True, True, "on_failure", True)
    assert settings.describe() == "failure, recovery, summary (on failure), late via SmtpNotifier to data@example.com"


def test_any_notifier_class_by_dotted_name() -> None:
    raw = {"notifier": "airflow.providers.smtp.notifications.smtp.SmtpNotifier", "body_field": "html_content"}
    settings = alerts.parse_alerts({**raw, "kwargs": {"to": "a@example.com"}}, origin=ORIGIN)
    assert settings is not None and settings.body_field == "html_content" and settings.subject_field is None


def test_per_destination_overrides_add_recipients_and_kwargs() -> None:
    raw = {**SMTP, "destinations": {"acme-ios": {"extra_recipients": ["ios@acme.example"], "kwargs": {"cc": "x@y.z"}}}}
    settings = alerts.parse_alerts(raw, origin=ORIGIN, destination_names=["acme-ios"])
    assert settings is not None
    cls, kwargs = settings.notifier_for("acme-ios")
    assert cls.__name__ == "SmtpNotifier"
    assert kwargs == {"smtp_conn_id": "smtp_alerts", "to": ["data@example.com", "ios@acme.example"], "cc": "x@y.z"}
    assert settings.notifier_for("other")[1] == SMTP["kwargs"]
    assert settings.notifier_for(None)[1] == SMTP["kwargs"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("yes", f"{ORIGIN}: alerts: must be a mapping (notifier, kwargs, failure, recovery, summary, ...)"),
        (
            {**SMTP, "notifer": "smtp"},
            f"{ORIGIN}: alerts: field 'notifer': unknown field; allowed: ['body_field', 'destinations', 'failure', "
            "'html', 'kwargs', 'late', 'notifier', 'recipients_field', 'recovery', 'subject_field', 'summary']",
        ),
        (
            {**SMTP, "notifier": "no_such_module.Notifier", "body_field": "text"},
            f"{ORIGIN}: alerts: field 'notifier': cannot import no_such_module.Notifier: ModuleNotFoundError: "
            "No module named 'no_such_module'",
        ),
        (
            {**SMTP, "notifier": "json.JSONDecoder", "body_field": "text"},
            f"{ORIGIN}: alerts: field 'notifier': json.JSONDecoder is not an Airflow notifier (no notify method)",
        ),
        (
            {"notifier": "airflow.providers.smtp.notifications.smtp.SmtpNotifier"},
            f"{ORIGIN}: alerts: field 'body_field': name the keyword argument of "
            "airflow.providers.smtp.notifications.smtp.SmtpNotifier that takes the message text (e.g. text)",
        ),
        (
            {"kwargs": {"smtp_conn_id": "smtp_alerts"}},
            f"{ORIGIN}: alerts: field 'kwargs.to': give at least one recipient address for the e-mails",
        ),
        (
            {"kwargs": {"to": "a@b.c", "smtp_password": "x"}},
            f"{ORIGIN}: alerts: field 'kwargs.smtp_password': credentials belong in the notifier's Airflow "
            "connection, not here",
        ),
        (
            {**SMTP, "summary": "daily"},
            f"{ORIGIN}: alerts: field 'summary': must be one of ['on_failure', 'always', 'never']",
        ),
        ({**SMTP, "late": "no"}, f"{ORIGIN}: alerts: field 'late': must be true or false"),
        (
            {**SMTP, "destinations": {"acme-andriod": {"extra_recipients": ["a@b.c"]}}},
            f"{ORIGIN}: alerts: field 'destinations.acme-andriod': no destination of this name is configured",
        ),
        (
            {**SMTP, "destinations": {"acme-ios": {"extra_recipients": [""]}}},
            f"{ORIGIN}: alerts: field 'destinations.acme-ios.extra_recipients': must be a list of recipients",
        ),
    ],
)
def test_each_problem_is_one_line(raw: object, expected: str) -> None:
    assert problems(raw, ["acme-ios"]) == [expected]
    with pytest.raises(alerts.AlertConfigError) as info:
        alerts.parse_alerts(raw, origin=ORIGIN, destination_names=["acme-ios"])
    assert str(info.value) == expected


def test_every_problem_is_listed() -> None:
    found = problems({"kwargs": {"api_token": "t"}, "summary": 1, "failure": "x"}, [])
    assert [p.split("field ")[1].split(":")[0] for p in found] == [
        "'kwargs.api_token'",
        "'kwargs.to'",
        "'failure'",
        "'summary'",
    ]


def test_an_invalid_alerts_section_never_fails_the_destinations() -> None:
    document = {"destinations": [DEST], "alerts": {"notifier": 42}}
    configuration = config.read_configuration(document, S3_EXPORT, origin=ORIGIN)
    assert configuration.names == ["acme-ios"] and configuration.alerts == {"notifier": 42}


def write(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_config_check_lists_alert_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s3_export.yaml", {"destinations": [DEST], "alerts": {"kwargs": {}, "summary": "daily"}})
    assert config_check(["check", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    origin = f"destinations file {path}"
    assert out == [
        f"{origin}: alerts: field 'kwargs.to': give at least one recipient address for the e-mails",
        f"{origin}: alerts: field 'summary': must be one of ['on_failure', 'always', 'never']",
    ]


def test_config_check_shows_the_alerts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = {**SMTP, "summary": "always", "destinations": {"acme-ios": {"extra_recipients": ["ios@acme.example"]}}}
    path = write(tmp_path / "s3_export.yaml", {"destinations": [DEST], "alerts": raw})
    assert config_check(["check", str(path)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"config check: OK; s3_export: 1 destination(s) in {path}; alerts: failure, recovery, summary (always), "
        "late via SmtpNotifier to data@example.com; overrides for acme-ios"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("D+1 08:00", dt.timedelta(days=1, hours=8)),
        ("D+2 23:59", dt.timedelta(days=2, hours=23, minutes=59)),
        ("30m", dt.timedelta(minutes=30)),
        ("1d8h", dt.timedelta(days=1, hours=8)),
        ("90s", dt.timedelta(seconds=90)),
        ("off", None),
    ],
)
def test_deadline_setting(text: str, expected: dt.timedelta | None) -> None:
    assert alerts.parse_deadline(text) == expected


@pytest.mark.parametrize("text", ["D+1 25:00", "tomorrow", "8", "D+1"])
def test_bad_deadline_setting_is_one_line(text: str) -> None:
    with pytest.raises(ValueError) as info:
        alerts.parse_deadline(text)
    assert str(info.value) == (
        f"SUBSCRIPTION_EXPORTS_DELIVERY_DEADLINE={text!r}: expected 'D+N HH:MM' (e.g. 'D+1 08:00'), a duration "
        "after the run's logical date (e.g. '90m', '1d8h') or 'off'"
    )


def test_deadline_default_and_per_dag_override() -> None:
    assert alerts.deadline_interval("s3_export", {}) == dt.timedelta(days=1, hours=8)
    env = {
        "SUBSCRIPTION_EXPORTS_DELIVERY_DEADLINE": "D+1 10:00",
        "SUBSCRIPTION_EXPORTS_DELIVERY_DEADLINE_S3_EXPORT": "2h",
    }
    assert alerts.deadline_interval("s3_export", env) == dt.timedelta(hours=2)
    assert alerts.deadline_interval("custom_s3_ua_export", env) == dt.timedelta(days=1, hours=10)


def test_the_dags_carry_the_deadline_and_the_run_end_callbacks() -> None:
    from subscription_exports.compat import run_deadlines_supported

    args = alerts.dag_alert_args("s3_export")
    assert run_deadlines_supported() is (AIRFLOW_MINOR >= (3, 2))
    assert args["on_success_callback"] is alerts.run_finished and args["on_failure_callback"] is alerts.run_finished
    if not run_deadlines_supported():  # Airflow 3.1 (compat.run_deadlines_supported says why)
        assert "deadline" not in args
        return
    deadline = args["deadline"]
    assert deadline.interval == dt.timedelta(days=1, hours=8)
    assert type(deadline.reference).__name__ == "DagRunLogicalDateDeadline"
    assert deadline.callback.path == "subscription_exports.alerts.delivery_late"
    assert deadline.callback.kwargs == {"dag_id": "s3_export"}


def test_failure_cause_is_the_logged_line() -> None:
    from subscription_exports.compat import AirflowFailException

    assert alerts.failure_cause(AirflowFailException("destination 'x': field 'y': bad"), "x", None) == (
        "destination 'x': field 'y': bad"
    )
    # An ExportError names destination, connection, bucket and object itself: logged as it is.
    message = "destination 'x' (connection 'c', bucket 'b'): s3://b/k: export failed:\n  SlowDown"
    assert alerts.failure_cause(ExportError(message), "x", "events") == (
        "destination 'x' (connection 'c', bucket 'b'): s3://b/k: export failed: SlowDown"
    )
    assert alerts.failure_cause(ConnectionError("refused"), "x", "events") == (
        "destination 'x': table 'events': ConnectionError: refused"
    )
    assert alerts.failure_cause(TimeoutError("query"), "x", None) == "TimeoutError: query"


# -- sending through a real SMTP server ------------------------------------------------------------------


@pytest.fixture
def smtp_conn(smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> SmtpSink:
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", smtp_sink.connection())
    return smtp_sink


def test_message_arrives_as_written(smtp_conn: SmtpSink) -> None:
    raw = {**SMTP, "destinations": {"acme-ios": {"extra_recipients": ["ios@acme.example"]}}}
    settings = alerts.parse_alerts(raw, origin=ORIGIN)
    assert settings is not None
    # a cause may hold Jinja or HTML: sent as text, never rendered
    message = alerts.Message("[s3_export] FAILED: acme-ios for 2026-03-07", ["Cause: {{ ti }} <b> & 'x'", "Try: 1"])
    assert alerts.deliver(settings, message, destination="acme-ios", context=None, what="test") is True
    [received] = smtp_conn.received()
    assert received["Subject"] == "[s3_export] FAILED: acme-ios for 2026-03-07"
    assert received["From"] == "exports@example.com"
    assert received["To"] == "data@example.com, ios@acme.example"
    assert SmtpSink.text(received).splitlines() == ["Cause: {{ ti }} <b> & 'x'", "Try: 1"]
    # a plain-text part beside the HTML one, the same text
    plain = received.get_body(preferencelist=("plain",))
    assert plain is not None and plain.get_content().splitlines() == ["Cause: {{ ti }} <b> & 'x'", "Try: 1"]
    assert received.get_body(preferencelist=("html",)).get_content().startswith("<pre>Cause: {{ ti }} &lt;b&gt;")
    assert smtp_conn.logins == [smtp_conn.login]
    assert smtp_conn.password not in received.as_string()


def test_smtp_down_is_one_warning_and_no_error(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    down = SmtpSink()
    down.port = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", down.connection())
    settings = alerts.parse_alerts(SMTP, origin=ORIGIN)
    assert settings is not None
    with caplog.at_level(logging.INFO, logger="subscription_exports"):
        sent = alerts.deliver(settings, alerts.Message("s", ["b"]), destination=None, context=None, what="failure of x")
    assert sent is False
    ours = [r for r in caplog.records if r.name.startswith("subscription_exports")]
    assert [(r.levelname, r.getMessage()) for r in ours] == [
        (
            "WARNING",
            "alert not sent (failure of x): SmtpNotifier: ConnectionRefusedError: [Errno 111] Connection refused",
        )
    ]


def test_a_callback_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    """Whatever goes wrong while alerting (here: no task context at all), the callback logs one warning."""
    with caplog.at_level(logging.WARNING, logger="subscription_exports"):
        alerts.export_failed({})
        alerts.export_succeeded({})
        alerts.run_finished({})
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "alert not sent (failure)",
        "alert not sent (recovery)",
        "alert not sent (summary)",
    ]
    assert os.environ.get("AIRFLOW_CONN_SMTP_ALERTS") is None


# -- a scheduled run created after its own deadline -------------------------------------------------------


def test_a_scheduled_run_created_after_its_deadline_is_late_in_its_summary_not_by_a_late_message() -> None:
    env = {"SUBSCRIPTION_EXPORTS_DELIVERY_DEADLINE": "D+1 08:00"}
    day = dt.datetime(2026, 3, 7, tzinfo=dt.UTC)
    deadline = dt.datetime(2026, 3, 8, 8, tzinfo=dt.UTC)
    created = dt.datetime(2026, 3, 9, 10, 5, tzinfo=dt.UTC)  # e.g. the DAG unpaused two days late
    unpaused_late = {"run_type": "scheduled", "logical_date": day, "queued_at": created}
    assert alerts.created_after_deadline("scheduled", unpaused_late["queued_at"], deadline)
    assert alerts.late_line("s3_export", unpaused_late, env) == (
        "Late: the run was created at 2026-03-09 10:05 UTC, after its delivery deadline 2026-03-08 08:00 UTC "
        "(no LATE message was sent for it)"
    )
    on_time = {**unpaused_late, "queued_at": dt.datetime(2026, 3, 8, 4, tzinfo=dt.UTC)}
    assert alerts.late_line("s3_export", on_time, env) is None
    assert not alerts.created_after_deadline("scheduled", on_time["queued_at"], deadline)
    # backfills and manual runs catch up by intent: never "late" in their summary
    for run_type in ("backfill", "manual"):
        assert alerts.late_line("s3_export", {**unpaused_late, "run_type": run_type}, env) is None
    assert alerts.late_line("s3_export", unpaused_late, {"SUBSCRIPTION_EXPORTS_DELIVERY_DEADLINE": "off"}) is None


def test_the_late_message_is_not_sent_for_a_run_created_after_its_deadline(monkeypatch, caplog) -> None:
    """The triggerer's callback returns before it reads the settings (replaced by a guard that fails the test)."""

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("settings read: the LATE message would be sent")

    monkeypatch.setattr(alerts, "_settings", must_not_run)
    context = {
        "dag_run": {"dag_run_id": "scheduled__2026-03-07T00:00:00+00:00", "run_type": "scheduled",
                    "queued_at": "2026-03-09T10:05:00+00:00", "run_after": "2026-03-08T04:00:00+00:00"},
        "deadline": {"deadline_time": "2026-03-08T08:00:00+00:00"},
    }  # fmt: skip
    with caplog.at_level(logging.INFO, logger=alerts.log.name):
        alerts._delivery_late("s3_export", context)
    assert "delivery deadline of scheduled__2026-03-07T00:00:00+00:00 passed before the run was created" in caplog.text

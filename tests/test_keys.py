"""Two destinations never write the same key; the config check lists every problem (no I/O but tmp files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from subscription_exports import keys
from subscription_exports.config import (
    ConfigError,
    destination_problems,
    load_configuration,
    read_configuration,
    validate_destination,
)
from subscription_exports.integrations import CUSTOM_S3_UA_EXPORT, S3_EXPORT, Integration

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = "test-keys"


def dest(name: str, integration: Integration = S3_EXPORT, **fields: Any):
    base = {"name": name, "conn_id": "c", "bucket": "exports", "folder": "f", "app_id": name}
    return validate_destination({**base, **fields}, integration, origin=ORIGIN)


def clashes(*dests, dag_id: str = "s3_export") -> list[str]:
    patterns = [p for d in dests for p in keys.key_patterns(d, dag_id=dag_id, origin=ORIGIN)]
    return [c.message() for c in keys.collisions(patterns)]


# -- collisions ------------------------------------------------------------------------------------


def test_same_folder_different_apps_collide_with_the_default_template() -> None:
    assert clashes(dest("a"), dest("b")) == [
        f"{ORIGIN}: destinations 'a' and 'b' can write the same key s3://exports/f/events/dt={{date}}/"
        "events_{date}.csv, so one would overwrite the other's files; give them different folders, or put "
        "{app_id} or {destination} in both key templates"
    ]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"folder": "x"}, {"folder": "y"}),  # different folders
        ({"bucket": "exports/x"}, {"bucket": "exports/y"}),  # different nested directories
        ({"bucket": "other"}, {}),  # different buckets
        ({"tables": ["events"]}, {"tables": ["paywall_visits"]}),  # different tables
        ({"gzip": True}, {}),  # .csv.gz vs .csv
    ],
)
def test_distinct_destinations_do_not_collide(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert clashes(dest("a", **a), dest("b", **b)) == []


def test_app_id_in_both_templates_makes_keys_distinct_only_when_the_apps_differ() -> None:
    templates = {
        "key_template": "{app_id}/{table}/{date}.{ext}",
        "range_key_template": "{app_id}/{table}/{date_from}_{date_to}.{ext}",
    }
    assert clashes(dest("a", **templates), dest("b", **templates)) == []
    assert len(clashes(dest("a", **templates), dest("b", app_id="a", **templates))) == 1


def test_a_placeholder_in_one_template_only_still_collides() -> None:
    # {app_id} in both daily templates, but the default range template has none: ranges collide
    daily = {"key_template": "{app_id}/{table}/{date}.{ext}"}
    [clash] = clashes(dest("a", **daily), dest("b", **daily))
    assert "s3://exports/f/events/manual/{date_from}_{date_to}/events_{date_from}_{date_to}.csv" in clash
    # {app_id} in one destination's templates only: both its keys start with its app id, the other's
    # with "events/": they cannot meet
    both = {**daily, "range_key_template": "{app_id}/{table}/{date_from}_{date_to}.{ext}"}
    assert clashes(dest("a", **both), dest("b")) == []


def test_a_literal_day_in_a_folder_can_meet_a_date_placeholder() -> None:
    a = dest("a", folder="f/events/dt=2026-01-01", key_template="{table}_{date}.{ext}")
    clash = clashes(a, dest("b"))
    assert len(clash) == 1
    assert (
        "s3://exports/f/events/dt=2026-01-01/events_{date}.csv (as s3://exports/f/events/dt={date}/events_{date}.csv)"
        in clash[0]
    )


def test_one_date_cannot_take_two_values() -> None:
    # b writes f/events/dt=D/events_DD.csv; a would need D = 2026-01-01 and D = 2026-01-02 at once
    a = dest("a", folder="f/events/dt=2026-01-01", key_template="{table}_2026-01-02{date}.{ext}")
    b = dest("b", key_template="{table}/dt={date}/{table}_{date}{date}.{ext}")
    assert clashes(a, b) == []


def test_letters_never_match_a_date() -> None:
    own = {"folder": "", "range_key_template": "{destination}/{table}/{date_from}_{date_to}.{ext}"}
    b = dest("b", key_template="{table}/{date}/{date}.{ext}", **own)
    a = dest("a", key_template="{table}/xxxx-xx-xx/{date}.{ext}", **own)
    assert clashes(a, b) == []
    c = dest("c", key_template="{table}/2026-01-01/{date}.{ext}", **own)
    assert len(clashes(c, b)) == 1


def test_across_the_two_dags() -> None:
    # UA tables and subscription tables differ, so the default templates never meet...
    ua = dest("u", CUSTOM_S3_UA_EXPORT)
    patterns = keys.key_patterns(ua, dag_id="custom_s3_ua_export", origin="ua-origin") + keys.key_patterns(
        dest("a"), dag_id="s3_export", origin=ORIGIN
    )
    assert keys.collisions(patterns) == []
    # ...but a template that drops the table name into a folder of the same name does
    ua = dest("u", CUSTOM_S3_UA_EXPORT, folder="f/events", key_template="{date}/x{table}.{ext}", tables=["ua_events"])
    sub = dest("a", folder="f", key_template="{table}/{date}/xua_{table}.{ext}", tables=["events"])
    patterns = keys.key_patterns(ua, dag_id="custom_s3_ua_export", origin="ua-origin") + keys.key_patterns(
        sub, dag_id="s3_export", origin=ORIGIN
    )
    [clash] = keys.collisions(patterns)
    assert clash.message().startswith(
        f"destination 'u' (ua-origin) and destination 'a' ({ORIGIN}) can write the same key "
    ) or clash.message().startswith(f"destination 'a' ({ORIGIN}) and destination 'u' (ua-origin)")


def test_five_thousand_destinations_are_compared_quickly() -> None:
    import time

    many = [dest(f"d{i}", folder=f"customers/{i}") for i in range(5000)] + [dest("dup", folder="customers/17")]
    started = time.monotonic()
    patterns = [p for d in many for p in keys.key_patterns(d, dag_id="s3_export", origin=ORIGIN)]
    found = keys.collisions(patterns)
    assert time.monotonic() - started < 20
    assert [(c.a.owner.name, c.b.owner.name) for c in found] == [("d17", "dup")]


def test_configuration_collisions_skip_invalid_entries_and_filter_by_destination() -> None:
    doc = {
        "destinations": [
            {"name": "a", "conn_id": "c", "bucket": "exports", "app_id": "x"},
            {"name": "b", "conn_id": "c", "bucket": "exports", "app_id": "y"},
            {"name": "bad", "conn_id": "c", "bucket": "exports", "app_id": "z", "gzipp": True},
            {"name": "c", "conn_id": "c", "bucket": "exports", "folder": "own", "app_id": "z"},
        ]
    }
    configuration = read_configuration(doc, S3_EXPORT, origin=ORIGIN)
    assert [(c.a.owner.name, c.b.owner.name) for c in keys.configuration_collisions([configuration])] == [("a", "b")]
    assert keys.configuration_collisions([configuration], involving=("s3_export", "c")) == []
    assert len(keys.configuration_collisions([configuration], involving=("s3_export", "b"))) == 1


# -- lenient configuration: one entry's mistake is its own ------------------------------------------


def test_an_invalid_entry_is_named_but_does_not_fail_the_configuration() -> None:
    doc = {
        "destinations": [
            {"name": "ok", "conn_id": "c", "bucket": "exports", "app_id": "x"},
            {
                "name": "typo",
                "conn_id": "c",
                "bucket": "exports",
                "folder": "t",
                "app_id": "y",
                "event_types": ["trial_strated"],
            },
        ]
    }
    configuration = read_configuration(doc, S3_EXPORT, origin=ORIGIN)
    assert configuration.names == ["ok", "typo"]
    valid, invalid = configuration.valid_destinations()
    assert [d.name for d in valid] == ["ok"]
    assert invalid["typo"].startswith(f"{ORIGIN}: destination 'typo': field 'event_types': unknown event type")
    with pytest.raises(ConfigError, match="destination 'gone' is no longer configured"):
        configuration.destination("gone")


@pytest.mark.parametrize(
    ("entries", "cause"),
    [
        ([{"name": "a"}, {"name": "a"}], "destination name 'a' is used twice"),
        ([{"conn_id": "c"}], "field 'destinations.0': destination #1 has no 'name'"),
        ([{"name": 5}], "destination #1 has no 'name'"),
        (["a"], "field 'destinations.0'"),
        ([], "no destinations configured"),
    ],
)
def test_what_belongs_to_no_single_destination_fails_the_configuration(entries: list, cause: str) -> None:
    with pytest.raises(ConfigError) as info:
        read_configuration({"destinations": entries}, S3_EXPORT, origin=ORIGIN)
    assert cause in str(info.value) and "\n" not in str(info.value)


def test_destination_problems_lists_every_problem() -> None:
    raw = {
        "name": "many",
        "bucket": "Bad_Bucket",
        "app_id": "x",
        "gzipp": True,
        "tables": ["events", "nope"],
        "event_types": ["trial_strated"],
        "rename_event_types": {"nope": "x"},
    }
    problems = destination_problems(raw, S3_EXPORT, origin=ORIGIN)
    fields = [p.split("field '")[1].split("'")[0] for p in problems]
    assert fields == ["conn_id", "bucket", "gzipp", "tables", "event_types", "rename_event_types"], problems
    assert all(p.startswith(f"{ORIGIN}: destination 'many': field '") and "\n" not in p for p in problems)
    assert (
        destination_problems(
            {"name": "ok", "conn_id": "c", "bucket": "exports", "app_id": "x"}, S3_EXPORT, origin=ORIGIN
        )
        == []
    )


def test_variable_configuration_is_read_at_each_call(tmp_path: Path) -> None:
    text = json.dumps({"destinations": [{"name": "v", "conn_id": "c", "bucket": "exports", "app_id": "x"}]})
    assert load_configuration(S3_EXPORT, variable_text=text).origin == "Airflow Variable 's3_export_destinations'"
    (tmp_path / "destinations").mkdir()
    (tmp_path / "destinations" / "s3_export.yaml").write_text(text, encoding="utf-8")
    assert load_configuration(S3_EXPORT, variable_text=None, include_dir=tmp_path).names == ["v"]


# -- the config check command ---------------------------------------------------------------------


def check(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    return subprocess.run(
        [sys.executable, "-m", "subscription_exports.config", "check", *args],
        capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=120,
    )  # fmt: skip


def test_check_passes_on_the_shipped_files() -> None:
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "config check: OK; s3_export: 2 destination(s)" in result.stdout
    assert "custom_s3_ua_export: 2 destination(s)" in result.stdout


def test_check_prints_every_problem_of_every_destination_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "s3_export.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "destinations": [
                    {"name": "typo", "conn_id": "c", "bucket": "exports", "folder": "t", "app_id": "x",
                     "event_types": ["trial_strated"], "gzipp": True},
                    {"name": "a", "conn_id": "c", "bucket": "exports", "app_id": "x"},
                    {"name": "b", "conn_id": "c", "bucket": "exports", "app_id": "y"},
                ]
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    result = check(str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    origin = f"destinations file {path}"
    assert lines[0] == f"{origin}: destination 'typo': field 'gzipp': Extra inputs are not permitted"
    assert lines[1].startswith(f"{origin}: destination 'typo': field 'event_types': unknown event type or group")
    assert lines[2].startswith(f"{origin}: destinations 'a' and 'b' can write the same key s3://exports/events/")
    assert len(lines) == 3
    assert "config check: 3 problem(s)" in result.stderr


def test_check_reports_syntax_errors_and_needs_to_know_the_dag(tmp_path: Path) -> None:
    path = tmp_path / "custom_s3_ua_export.yaml"
    path.write_text("destinations: [\n", encoding="utf-8")
    result = check(str(path))
    assert result.returncode == 1 and "not valid YAML/JSON at line 2" in result.stdout
    other = tmp_path / "prod.json"
    other.write_text('{"destinations": [{"name": "a", "conn_id": "c", "bucket": "exports", "app_id": "x"}]}')
    assert check(str(other)).returncode == 2
    result = check(str(other), "--dag-id", "s3_export")
    assert result.returncode == 0, result.stdout + result.stderr

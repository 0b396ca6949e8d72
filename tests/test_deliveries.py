"""Unit tests of the deliveries page's matrix, its HTML, and what the export path does not load.

The page itself, its security and re-exports run against a real Airflow in a browser
(test_deliveries_system.py); here: which run decides a cell, what each state shows, the counts per day,
the filters, hostile names in the HTML, the package's command line and its import graph.
"""

from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

from subscription_exports.deliveries import matrix as m
from subscription_exports.deliveries import page
from subscription_exports.integrations import INTEGRATIONS

UTC = dt.UTC
D1, D2, D3, D4 = (dt.date(2026, 3, d) for d in (6, 7, 8, 9))


def at(day: dt.date, hour: int = 4) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=UTC)


def run(run_id: str, day: dt.date, names: list[str] | None, *, dry: bool = False, after: int = 4, **kw) -> m.Run:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=UTC)
    return m.Run(
        run_id=run_id, state=kw.pop("state", "success"), run_type=kw.pop("run_type", "backfill"), start=start,
        end=kw.pop("end", start + dt.timedelta(days=1)), kind=kw.pop("kind", "daily"), dry_run=dry,
        run_after=at(day + dt.timedelta(days=1), after), names=names,
    )  # fmt: skip


def delivered(i: int, name: str, rows: int = 7, try_number: int = 1) -> m.TaskOutcome:
    objects = {"events": {"bucket": "b", "key": f"{name}/events.csv", "manifest_key": "m", "bytes": 100}}
    result = {"destination": name, "rows": {"events": rows}}
    return m.TaskOutcome(
        i, "success", try_number, at(D4), f"{name} (#{i})", result=result, delivery={"objects": objects}
    )


def failed(i: int, name: str, cause: str = "destination 'x': check failed: NoSuchBucket") -> m.TaskOutcome:
    failure = {"cause": cause, "table": None, "try_number": 2}
    return m.TaskOutcome(i, "failed", 2, at(D4), f"{name} (#{i})", delivery=failure)


IN_EFFECT = [m.DestinationInEffect("a", "app.ios", "b", "p/a"), m.DestinationInEffect("b", "app.and", "b", "p/b")]


def build(runs, outcomes, destinations=IN_EFFECT) -> m.Matrix:
    return m.build(dag_id="s3_export", days=[D1, D2, D3, D4], destinations=destinations, origin="file",
                   runs=runs, outcomes=outcomes)  # fmt: skip


def test_each_cell_from_the_latest_real_run_of_its_day():
    runs = [
        run("backfill__d1", D1, ["a", "b"]),
        run("manual__d1_again", D1, ["a", "b"], after=9, run_type="manual"),  # later: decides D1
        run("dry__d2", D2, ["a", "b"], dry=True),
        run("backfill__d3", D3, ["b", "a"]),  # another order: map indexes follow the run's own list
        run("dry__d3_later", D3, ["a", "b"], dry=True, after=10),  # a dry run never hides a real one
    ]
    outcomes = {
        "backfill__d1": {0: failed(0, "a"), 1: failed(1, "b")},
        "manual__d1_again": {0: delivered(0, "a", rows=9), 1: failed(1, "b", "cause of b")},
        "dry__d2": {0: delivered(0, "a"), 1: m.TaskOutcome(1, "running", 1, None, "b (#1)")},
        "backfill__d3": {
            0: m.TaskOutcome(0, "up_for_retry", 1, None, "b (#0)", delivery={"cause": "busy"}),
            1: delivered(1, "a", rows=3),
        },
        "dry__d3_later": {0: delivered(0, "a"), 1: delivered(1, "b")},
    }
    mx = build(runs, outcomes)
    a, b = (r.cells for r in mx.rows)
    first = a["2026-03-06"]
    assert (first.state, first.rows, first.run_id) == ("delivered", {"events": 9}, "manual__d1_again")
    assert a["2026-03-06"].objects["events"]["key"] == "a/events.csv" and a["2026-03-06"].bytes == 100
    assert (b["2026-03-06"].state, b["2026-03-06"].cause, b["2026-03-06"].try_number) == ("failed", "cause of b", 2)
    assert a["2026-03-07"].state == "dry_run" and b["2026-03-07"].state == "running"
    assert (a["2026-03-08"].state, a["2026-03-08"].rows) == ("delivered", {"events": 3})
    assert (b["2026-03-08"].state, b["2026-03-08"].cause) == ("up_for_retry", "busy")
    assert a["2026-03-09"].state == b["2026-03-09"].state == "not_run"
    assert [mx.delivered(d) for d in (D1, D2, D3, D4)] == [(1, 2), (0, 2), (1, 2), (0, 2)]
    assert mx.pending


def test_destinations_added_or_removed_since_a_run():
    runs = [run("r1", D1, ["a", "gone"]), run("r2", D2, ["a", "b"], state="running")]
    outcomes = {"r1": {0: delivered(0, "a"), 1: delivered(1, "gone")}, "r2": {0: delivered(0, "a")}}
    mx = build(runs, outcomes)
    by_name = {r.destination.name: r for r in mx.rows}
    assert by_name["b"].cells["2026-03-06"].state == "not_run"
    assert by_name["b"].cells["2026-03-06"].note == "not configured when this run started"
    assert by_name["b"].cells["2026-03-07"].state == "queued"  # in the running run, not started yet
    gone = by_name["gone"]
    assert not gone.configured and gone.destination.problem == "no longer configured"
    assert gone.cells["2026-03-06"].state == "delivered"
    assert mx.delivered(D1) == (1, 2), "a destination no longer configured is not counted"


def test_a_failure_without_a_recorded_cause_and_a_killed_task():
    outcomes = {"r": {0: m.TaskOutcome(0, "failed", 1, None, "a (#0)"), 1: m.TaskOutcome(1, None, 0, None, None)}}
    mx = build([run("r", D1, ["a", "b"], state="running")], outcomes)
    a, b = (r.cells["2026-03-06"] for r in mx.rows)
    assert a.state == "failed" and a.cause.startswith("no cause recorded")
    assert b.state == "queued"


def test_range_runs_are_listed_apart_and_only_when_they_meet_the_days():
    ranged = run("manual__range", D2, ["a", "b"], end=at(D4, 0), kind="range", run_type="manual")
    old = run("manual__old", dt.date(2025, 1, 1), ["a"], kind="range", run_type="manual")
    mx = build([ranged, old], {"manual__range": {0: delivered(0, "a"), 1: failed(1, "b")}})
    assert [g.run.run_id for g in mx.ranges] == ["manual__range"]
    assert mx.ranges[0].run.label == "2026-03-07..2026-03-08"
    assert {n: c.state for n, c in mx.ranges[0].cells.items()} == {"a": "delivered", "b": "failed"}
    assert all(c.state == "not_run" for r in mx.rows for c in r.cells.values()), "a range run fills no day"
    assert mx.to_dict()["ranges"][0]["cells"]["b"]["cause"].endswith("NoSuchBucket")


def test_filters():
    problem = m.DestinationInEffect("c", "app.ios", "b", "", problem="field 'bucket': required")
    mx = build([run("r", D1, ["a", "b"])], {"r": {0: delivered(0, "a"), 1: failed(1, "b")}}, [*IN_EFFECT, problem])
    names = lambda rows: [r.destination.name for r in rows]  # noqa: E731
    assert names(mx.filtered(failed_only=True)) == ["b", "c"]
    assert names(mx.filtered(app="app.ios")) == ["a", "c"]
    assert names(mx.filtered(name="B")) == ["b"]


def test_the_html_escapes_hostile_names_and_causes():
    hostile = "<script>alert(1)</script>'\""
    dests = [m.DestinationInEffect(hostile, hostile, "b", "p", problem=hostile)]
    mx = build([run("r", D1, [hostile])], {"r": {0: failed(0, hostile, cause=hostile)}}, dests)
    html = page.matrix_page(
        mx, prefix="/deliveries", ui_base="", rows=mx.rows, filters={"name": hostile}, apps=[hostile]
    )
    assert "<script>alert" not in html and html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
    assert "data-state='failed'" in html and "1 of 1" not in html and "0 of 1 delivered" in html


def test_the_export_path_loads_neither_fastapi_nor_the_page():
    """What a task process imports: the plugin file (every component loads it), the tasks and every
    module an export loads. The page's app is built on the api-server's first request only."""
    code = (
        "import sys; sys.path[:0] = ['plugins', '.']\n"
        "import subscription_exports_plugin as p, subscription_exports.tasks\n"
        "from subscription_exports import loading; loading.load_export_modules()\n"
        "import subscription_exports.alerts, subscription_exports.alerts_airflow, subscription_exports.notes\n"
        "assert p.SubscriptionExportsPlugin.fastapi_apps[0]['url_prefix'] == '/deliveries'\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')"
        " or m.startswith('subscription_exports.deliveries'))\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def imports_of_package() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports, inside functions too."""
    root = ROOT / "plugins" / "subscription_exports"
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("subscription_exports"):
                if node.module == "subscription_exports":
                    deps |= {f"subscription_exports.{a.name}" for a in node.names}
                else:
                    deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("subscription_exports")}
        graph[name] = deps
    return {k: {d for d in v if d in graph and d != k} for k, v in graph.items()}


def test_no_import_circle_in_the_package():
    graph = imports_of_package()
    assert "subscription_exports.config_check" not in graph["subscription_exports.config"]
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for dep in graph[module]:
            assert dep not in path, "import circle: " + " -> ".join([*path[path.index(dep) :], dep])
            if dep not in done:
                visit(dep, [*path, dep])
        done.add(module)

    for module in graph:
        visit(module, [module])


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env_path = f"{ROOT / 'plugins'}:{ROOT}"
    import os

    env = {**os.environ, "PYTHONPATH": env_path}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_one_command_line_entry_point_and_the_old_forms():
    new = cli("subscription_exports", "config", "check")
    old = cli("subscription_exports.config", "check")
    assert new.returncode == old.returncode == 0, (new.stderr[-2000:], old.stderr[-2000:])
    assert new.stdout == old.stdout and new.stdout.startswith("config check: OK; s3_export: ")
    broken = Path(cli.__code__.co_filename).parent / "__never__.yaml"
    bad = cli("subscription_exports", "config", "check", "--dag-id", "s3_export", str(broken))
    assert bad.returncode == 1 and "cannot read" in bad.stdout
    helped = cli("subscription_exports", "--help")
    assert helped.returncode == 0 and all(c in helped.stdout for c in ("deliveries", "config", "verify"))
    verify = cli("subscription_exports", "verify", "--conn-id", "x", "not-a-uri")
    assert verify.returncode == 2 and "expected s3://bucket/key" in verify.stderr
    assert cli("subscription_exports", "deliveries", "--help").stdout.count("--dag-id") >= 1


def test_destinations_in_effect_carry_what_config_check_reports():
    """As a run reads them (the Variable's text here), each with its problem: an invalid field, a key collision."""
    import json

    from subscription_exports.deliveries import store

    entries = [
        {"name": "ok", "conn_id": "s3", "bucket": "exports/ok", "app_id": "app.ios"},
        {
            "name": "typo",
            "conn_id": "s3",
            "bucket": "exports/typo",
            "app_id": "app.ios",
            "event_types": ["trial_strated"],
        },
        {"name": "twin-a", "conn_id": "s3", "bucket": "exports/same", "app_id": "app.ios"},
        {"name": "twin-b", "conn_id": "s3", "bucket": "exports/same", "app_id": "app.and"},
    ]
    text = json.dumps({"source_conn_id": "src", "destinations": entries})
    found, origin = store.destinations_in_effect(INTEGRATIONS["s3_export"], {"s3_export": text})
    assert origin == "Airflow Variable 's3_export_destinations'"
    by_name = {d.name: d for d in found}
    assert list(by_name) == ["ok", "typo", "twin-a", "twin-b"]
    assert by_name["ok"].problem is None and (by_name["ok"].bucket, by_name["ok"].prefix) == ("exports", "ok")
    assert "field 'event_types': unknown event type or group 'trial_strated'" in by_name["typo"].problem
    for twin in ("twin-a", "twin-b"):
        assert "destinations 'twin-a' and 'twin-b' can write the same key" in by_name[twin].problem
    # the same text again: the validated result is reused (thousands of destinations take a second)
    assert store.destinations_in_effect(INTEGRATIONS["s3_export"], {"s3_export": text})[0] is found

"""A RUNNING Airflow 3 for system tests: real components as subprocesses, driven through the CLI.

`running_airflow()` starts, each in its own process group, with a private AIRFLOW_HOME and a
PostgreSQL metadata database: `airflow api-server` (also serving the Execution API the task
processes talk to), `airflow scheduler`, `airflow dag-processor`, plus any extra components a test
asks for (e.g. `airflow celery worker`). On exit it stops every process it started, including task
processes that moved to their own process groups, and fails if any is left. Those are found by the
process tree, not by AIRFLOW_HOME in /proc/PID/environ: Airflow's `setproctitle` overwrites that
memory in executor workers and task processes (see `ProcessTracker`).

What Airflow 3.3 requires here (found by reading airflow-core 3.3.2 and confirmed by the tests):

* The CLI commands used by the tests (`backfill create`, `dags trigger/unpause/list-runs/details`,
  `pools set`) work on the metadata database directly and need no API authentication; the task
  processes authenticate to the Execution API with JWTs signed with ``[api_auth] jwt_secret``, which
  must be the same for every component (fixed below).
* The scheduler's and the Celery worker's log servers bind all interfaces, so both start with
  ``--skip-serve-logs`` (task logs are local files under AIRFLOW_HOME/logs).
* ``[scheduler] use_job_schedule = False`` stops time-based runs *and* asset-triggered runs
  (`SchedulerJobRunner` skips `_create_dagruns_for_dags` altogether), so a test that needs
  asset-triggered runs keeps it on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
import pytest

from devtools import airflow_env

ROOT = Path(__file__).resolve().parents[1]
JWT_SECRET = "airflow-cluster-system-test-jwt-secret-0123456789"
RUN_TIMEOUT = 300  # seconds for a batch of runs to finish
TERMINAL = {"success", "failed"}
DEFAULT_DAG_ID = "s3_export"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({exc})"


def procs_with_home(home: Path) -> list[int]:
    """PIDs of live processes whose environment shows our AIRFLOW_HOME. Not enough on its own: Airflow's
    `setproctitle` overwrites /proc/PID/environ of executor workers and task processes (the title
    is written over argv and the environment that follows it), so those do not show it."""
    marker = f"AIRFLOW_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = next(
                (line for line in (entry / "status").read_text().splitlines() if line.startswith("State:")), ""
            )
        except OSError:
            continue
        if marker in environ.split(b"\0") and "zombie" not in state:
            found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    session: int
    starttime: int  # clock ticks since boot: with the pid, identifies a process (pids are reused)
    state: str


def proc_table() -> dict[int, Proc]:
    """Every live, non-zombie process, from /proc/PID/stat."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session ... starttime(22nd) ...": comm may hold spaces and ')'.
        rest = stat[stat.rindex(")") + 2 :].split()
        proc = Proc(int(entry.name), int(rest[1]), int(rest[3]), int(rest[19]), rest[0])
        if proc.state not in ("Z", "X"):
            table[proc.pid] = proc
    return table


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@dataclass
class ProcessTracker:
    """The processes a cluster started, however they renamed or regrouped themselves.

    A process belongs to the cluster if it is a root (a component this harness started), is in a
    live root's session (each root starts its own session; a child that only changes its process
    group stays in it), descends from one of those, or was seen belonging earlier (same pid and
    start time): a task process whose parent already exited is re-parented away from the tree but
    stays tracked. Pids are only trusted with their start time, so a pid the kernel reuses for
    another program (another test's, another user's) is never taken for ours. `track()` runs on
    every poll of `Airflow.wait` and before `stop` kills anything, so short-lived parents are seen.
    """

    roots: dict[int, int] = field(default_factory=dict)  # pid -> starttime
    seen: dict[int, int] = field(default_factory=dict)  # pid -> starttime

    def add_root(self, pid: int) -> None:
        proc = proc_table().get(pid)
        if proc is not None:
            self.roots[pid] = proc.starttime

    def track(self) -> list[Proc]:
        table = proc_table()

        def same(pid: int, start: int) -> bool:
            return pid in table and table[pid].starttime == start

        live_roots = {pid for pid, start in self.roots.items() if same(pid, start)}
        ours = live_roots | {pid for pid, proc in table.items() if proc.session in live_roots}
        ours |= {pid for pid, start in self.seen.items() if same(pid, start)}
        children: dict[int, list[int]] = {}
        for proc in table.values():
            children.setdefault(proc.ppid, []).append(proc.pid)
        todo = list(ours)
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in ours:
                    ours.add(child)
                    todo.append(child)
        ours.discard(os.getpid())
        for pid in ours:
            self.seen[pid] = table[pid].starttime
        return sorted((table[pid] for pid in ours), key=lambda p: p.pid)

    def alive(self) -> list[int]:
        return [proc.pid for proc in self.track()]


@dataclass
class Airflow:
    """A running Airflow: private home, PostgreSQL metadata DB, components in their own process groups."""

    home: Path
    env: dict[str, str]
    metadata_url: str  # postgresql:// URL for direct, read-only polling
    dag_id: str = DEFAULT_DAG_ID  # default DAG of the helpers below
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tracker: ProcessTracker = field(default_factory=ProcessTracker)
    base_url: str = ""
    _token: str | None = None  # see auth_headers

    # -- processes ------------------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start(self, name: str, *args: str) -> None:
        with self.log_path(name).open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [str(airflow_env.AIRFLOW_BIN), *args],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session and process group: killpg reaches its children
            )
        self.tracker.add_root(self.procs[name].pid)

    def check_alive(self) -> None:
        self.tracker.track()
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"`airflow {name}` exited with {proc.returncode}:\n{self.diagnostics()}", pytrace=False)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every process group, SIGKILL what is left after `timeout`, then every straggler of the
        process tree (task processes put themselves into their own process groups)."""
        self.tracker.track()
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for pid in {*self.tracker.alive(), *procs_with_home(self.home)}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)

    def leftovers(self) -> list[str]:
        """What still runs of this cluster: `pid cmdline` of every tracked process."""
        pids = sorted({*self.tracker.alive(), *procs_with_home(self.home)})
        return [f"{pid} {cmdline(pid)}" for pid in pids]

    # -- REST API (/api/v2; the test clusters allow every request as admin) ------------------------

    def auth_headers(self) -> dict[str, str]:
        """A bearer token of the simple auth manager's all-admins mode (``GET /auth/token``), when it gives one.

        Airflow 3.3 lets token-less REST requests through in that mode; 3.1 and 3.2 answer them 401."""
        if self._token is None:
            try:
                with urllib.request.urlopen(f"{self.base_url}/auth/token", timeout=30) as resp:
                    self._token = json.loads(resp.read()).get("access_token", "")
            except (urllib.error.URLError, ValueError):
                self._token = ""
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.base_url}/api/v2/{path.lstrip('/')}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json", **self.auth_headers()},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            pytest.fail(f"{method} /api/v2/{path}: {exc.code} {exc.read()[:2000]!r}", pytrace=False)

    def diagnostics(self, lines: int = 40) -> str:
        parts = [f"--- {name}.log (tail) ---\n{tail(self.log_path(name), lines)}" for name in self.procs]
        return "\n".join(parts)

    # -- CLI ------------------------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(airflow_env.AIRFLOW_BIN), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"`airflow {' '.join(args)}` failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                f"{result.stderr[-3000:]}",
                pytrace=False,
            )
        return result

    def cli_json(self, *args: str) -> Any:
        # stdout may also carry warnings (e.g. "[warning  ] Could not import graphviz"): take the JSON line.
        out = self.cli(*args, "-o", "json").stdout
        for line in reversed(out.splitlines()):
            with contextlib.suppress(ValueError):
                return json.loads(line)
        pytest.fail(f"no JSON in the output of `airflow {' '.join(args)} -o json`:\n{out[-3000:]}", pytrace=False)

    def list_runs(self, dag_id: str | None = None) -> dict[str, dict[str, str]]:
        """`airflow dags list-runs DAG -o json`, keyed by run_id."""
        return {run["run_id"]: run for run in self.cli_json("dags", "list-runs", dag_id or self.dag_id)}

    def dag_details(self, dag_id: str | None = None) -> dict[str, Any]:
        details = self.cli_json("dags", "details", dag_id or self.dag_id)
        return details[0] if isinstance(details, list) else details

    # -- metadata DB (cheap polling; every assertion on run states also goes through the CLI) ----

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with (
            contextlib.closing(psycopg2.connect(self.metadata_url)) as conn,
            conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur,
        ):
            cur.execute(sql, params)
            return [dict(row) for row in cur.fetchall()] if cur.description else []

    def runs(self, dag_id: str | None = None) -> dict[str, dict[str, Any]]:
        rows = self.query(
            "SELECT run_id, state, run_type, logical_date, data_interval_start, data_interval_end, backfill_id, conf "
            "FROM dag_run WHERE dag_id = %s",
            dag_id or self.dag_id,
        )
        return {row["run_id"]: row for row in rows}

    def task_instances(self, run_id: str, dag_id: str | None = None) -> list[dict[str, Any]]:
        return self.query(
            "SELECT task_id, map_index, state, pool, queue, hostname, rendered_map_index FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
            dag_id or self.dag_id,
            run_id,
        )

    def task_states(self, run_id: str, dag_id: str | None = None) -> dict[str, str]:
        rows = self.task_instances(run_id, dag_id)
        return {f"{r['task_id']}[{r['map_index']}]" if r["map_index"] >= 0 else r["task_id"]: r["state"] for r in rows}

    def wait(self, what: str, done: Callable[[], bool], timeout: float = RUN_TIMEOUT, every: float = 1.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            self.check_alive()
            if time.monotonic() > deadline:
                runs = json.dumps(self.runs(), default=str, indent=1)
                pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; runs: {runs}\n{self.diagnostics()}")
            time.sleep(every)

    def wait_runs_terminal(
        self, what: str, select: Callable[[dict[str, Any]], bool], count: int, dag_id: str | None = None
    ) -> dict[str, str]:
        """Wait until exactly `count` runs match `select` and all are finished; returns {run_id: state}
        as `airflow dags list-runs` reports it."""

        def done() -> bool:
            picked = [r for r in self.runs(dag_id).values() if select(r)]
            return len(picked) == count and all(r["state"] in TERMINAL for r in picked)

        self.wait(what, done)
        picked = {r["run_id"] for r in self.runs(dag_id).values() if select(r)}
        listed = self.list_runs(dag_id)
        return {run_id: listed[run_id]["state"] for run_id in picked}

    def wait_backfills_completed(self, dag_id: str | None = None) -> None:
        """The scheduler marks a backfill completed a loop after its last run ends; until then Airflow
        refuses a new backfill of the DAG ("There can be only one running backfill per Dag")."""
        self.wait(
            "the backfill to be marked completed",
            lambda: (
                not self.query(
                    "SELECT id FROM backfill WHERE dag_id = %s AND completed_at IS NULL", dag_id or self.dag_id
                )
            ),
            timeout=120,
        )

    def explain_runs(self, run_ids: Iterable[str], dag_id: str | None = None) -> str:
        """Task states of `run_ids` and the log tail of every task instance that did not succeed:
        what an assertion on run states prints, so a CI failure shows its cause."""
        parts = []
        for run_id in run_ids:
            parts.append(f"run {run_id}: {self.task_states(run_id, dag_id)}")
            for ti in self.task_instances(run_id, dag_id):
                if ti["state"] != "success":
                    log = self.task_log(run_id, ti["task_id"], dag_id)
                    parts.append(f"--- {ti['task_id']}[{ti['map_index']}] {ti['state']} log (tail) ---")
                    parts.append(log[-4000:])
        return "\n".join(parts)

    def assert_runs_succeeded(self, states: dict[str, str], dag_id: str | None = None) -> None:
        if set(states.values()) != {"success"}:
            bad = [run_id for run_id, state in states.items() if state != "success"]
            pytest.fail(f"runs did not succeed: {states}\n{self.explain_runs(bad, dag_id)}", pytrace=False)

    def task_log(self, run_id: str, task_id: str, dag_id: str | None = None) -> str:
        """Every attempt's log of every map index of `task_id` (local files under AIRFLOW_HOME/logs)."""
        base = self.home / "logs" / f"dag_id={dag_id or self.dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        logs = sorted(p for p in base.rglob("*") if p.is_file())
        return "\n".join(p.read_text(errors="replace") for p in logs)


def dags_folder(target: Path, *sources: Path) -> Path:
    """A DAG folder holding copies of the project's dags/ and of `sources` (e.g. tests/dags/*.py)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in [*sorted((ROOT / "dags").glob("*.py")), *sources]:
        shutil.copy2(path, target / path.name)
    return target


@contextlib.contextmanager
def running_airflow(
    home: Path,
    metadata_url: str,
    *,
    expect_dags: Iterable[str],
    extra_components: Iterable[tuple[str, list[str]]] = (),
    before_start: Callable[[Airflow], None] | None = None,
    **env: str,
) -> Iterator[Airflow]:
    """api-server + scheduler + dag-processor (+ `extra_components`) on loopback, until `expect_dags` are
    parsed (paused at creation unless `env` says otherwise). `env` adds to / overrides the settings."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url.replace("postgresql://", "postgresql+psycopg2://", 1),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "SUBSCRIPTION_EXPORTS_RETRIES": "0",
    }
    settings.update(env)
    af = Airflow(home=home, env=airflow_env.airflow_env(home, **settings), metadata_url=metadata_url, base_url=base_url)
    wanted = set(expect_dags)
    try:
        af.cli("db", "migrate", timeout=600)
        if before_start:
            before_start(af)
        af.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        af.start("scheduler", "scheduler", "--skip-serve-logs")
        af.start("dag-processor", "dag-processor")
        for name, args in extra_components:
            af.start(name, *args)

        def api_healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{base_url}/api/v2/monitor/health", timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False

        def parsed() -> bool:
            errors = af.query("SELECT filename, stacktrace FROM import_error")
            if errors:
                pytest.fail(f"DAG import errors: {errors}", pytrace=False)
            return wanted <= {r["dag_id"] for r in af.query("SELECT dag_id FROM serialized_dag")}

        af.wait("the api-server to answer", api_healthy, timeout=120)
        af.wait(f"the dag-processor to parse {sorted(wanted)}", parsed, timeout=180)
        listed = {d["dag_id"] for d in af.cli_json("dags", "list")}
        assert wanted <= listed, listed
        yield af
    finally:
        af.stop()
        leftovers = af.leftovers()
        assert not leftovers, f"Airflow processes of the test still running: {leftovers}"

"""memory.py: Arrow's pool (jemalloc with the package's settings unless SUBSCRIPTION_EXPORTS_ARROW_ALLOCATOR
names another), the same bytes on every pool.

What the settings buy (page faults, CPU, peak RSS) is measured by ``make bench``, not asserted here.

The pool is process-wide and set once per process (as in an Airflow task), so each case runs in a
fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from subscription_exports import ARROW_POOL_VARIABLE, memory

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"

# Parse, shape and encode a hostile day (quotes, CR, LF, commas at every offset of small blocks) in
# a fresh process, then print the backend in use and a digest of the bytes.
EXPORT_IN_PROCESS = """
import hashlib, json, logging, os, sys
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
sys.path.insert(0, {plugins!r})
if {pyarrow_first!r}:
    import pyarrow  # loaded before the package: its jemalloc settings come too late
from subscription_exports import memory, parsing, transform
import pyarrow as pa
from subscription_exports.tables import EVENTS
pool_at_import = pa.default_memory_pool().backend_name  # the pool of the scalars the modules created
memory.bound_process_memory()
columns = transform.source_columns(EVENTS)
values = ['', 'a,b', 'say "hi"', 'line\\r\\nbreak', 'x' * 300, '=1+2', 'lone\\rcr', 'emoji \\U0001f600']
rows = []
for i in range(800):
    row = [values[(i + j) % len(values)] for j in range(len(columns))]
    row[columns.index('event_type')] = 'TRIAL_STARTED'
    for name in ('event_datetime', 'subscription_expires_at', 'install_date'):
        row[columns.index(name)] = '2026-03-07 12:34:56.1+00'
    for name in ('revenue_usd', 'proceeds_usd', 'net_revenue_usd', 'tax_amount_usd', 'revenue_local',
                 'proceeds_local', 'net_revenue_local', 'tax_amount_local'):
        row[columns.index(name)] = '9.9900'
    row[columns.index('attributes')] = ''
    rows.append(row)
def field(v):
    return '"' + v.replace('"', '""') + '"' if v == '' or any(c in v for c in ',"\\r\\n') else v
text = ','.join(columns) + '\\n' + ''.join(','.join(field(v) for v in row) + '\\n' for row in rows)
import io
digest = hashlib.sha256()
chunks = parsing.open_chunks(io.BytesIO(text.encode()), columns, block_size=4096)
for group in transform.grouped(chunks, 8192):
    frame = transform.shape(group, EVENTS, transform.ShapeOptions())
    for buffer in transform.encode_row_buffers(frame):
        digest.update(buffer)
print(json.dumps({{"backend": pa.default_memory_pool().backend_name, "sha256": digest.hexdigest(),
                  "jemalloc_conf": os.environ.get("JE_ARROW_MALLOC_CONF"), "pool_at_import": pool_at_import}}))
"""


def run_export(
    allocator: str | None,
    jemalloc_conf: str | None = None,
    *,
    pyarrow_first: bool = False,
    arrow_default_pool: str | None = None,
) -> dict:
    # This process imported the package, which set these for itself: the export's process starts without.
    unset = (memory.ALLOCATOR_VARIABLE, memory.JEMALLOC_CONF_VARIABLE, ARROW_POOL_VARIABLE)
    env = {k: v for k, v in os.environ.items() if k not in unset}
    if allocator is not None:
        env[memory.ALLOCATOR_VARIABLE] = allocator
    if jemalloc_conf is not None:
        env[memory.JEMALLOC_CONF_VARIABLE] = jemalloc_conf
    if arrow_default_pool is not None:
        env[ARROW_POOL_VARIABLE] = arrow_default_pool
    done = subprocess.run(
        [sys.executable, "-c", EXPORT_IN_PROCESS.format(plugins=str(PLUGINS), pyarrow_first=pyarrow_first)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"stderr": done.stderr}


def test_default_is_jemalloc_configured_before_pyarrow_loads() -> None:
    # jemalloc reads JE_ARROW_MALLOC_CONF once, when pyarrow is loaded: the package sets it on import,
    # before its modules load pyarrow. (Its effect, the peak RSS, is measured by `make bench`.)
    default = run_export(None)
    assert default["backend"] == "jemalloc"
    conf = "narenas:1,tcache:false,dirty_decay_ms:250,muzzy_decay_ms:0"
    assert default["jemalloc_conf"] == memory.JEMALLOC_CONF == conf
    assert default["stderr"] == ""


@pytest.mark.parametrize("allocator", [None, "system", "mimalloc"])
def test_the_chosen_pool_is_arrows_default_from_the_first_allocation(allocator: str | None) -> None:
    # The package's modules create Arrow scalars on import, before an export sets its pool: they come
    # from the chosen pool too, so no other pool starts (mimalloc's arena kept about 6 MB of the peak).
    export = run_export(allocator)
    assert export["pool_at_import"] == export["backend"] == (allocator or "jemalloc")
    assert export["stderr"] == ""


def test_a_workers_own_default_pool_is_kept() -> None:
    own = run_export(None, arrow_default_pool="system")
    assert own["pool_at_import"] == "system" and own["backend"] == "jemalloc"
    assert own["stderr"] == ""


def test_a_workers_own_jemalloc_settings_are_kept() -> None:
    own = run_export(None, jemalloc_conf="dirty_decay_ms:500")
    assert own["jemalloc_conf"] == "dirty_decay_ms:500"
    assert own["stderr"] == ""


def test_pyarrow_loaded_before_the_package_is_one_warning_and_the_same_bytes() -> None:
    # jemalloc has read its settings by then: the export runs on Arrow's own (a higher peak), and says so.
    late = run_export(None, pyarrow_first=True)
    assert late["backend"] == "jemalloc" and late["jemalloc_conf"] is None
    assert late["sha256"] == run_export(None)["sha256"]
    assert late["stderr"].splitlines() == [
        "WARNING pyarrow was loaded before subscription_exports could configure its jemalloc: the export may peak "
        "about 15 MB higher; set JE_ARROW_MALLOC_CONF=narenas:1,tcache:false,dirty_decay_ms:250,muzzy_decay_ms:0 "
        "in the worker's environment"
    ]


@pytest.mark.parametrize("name", ["system", "mimalloc"])
def test_another_allocator_writes_the_same_bytes(name: str) -> None:
    # pyarrow's Linux wheels (the locks pin them) carry all three; a build without one is a failure here
    # (AllocatorError, "this pyarrow is built without ..."), not a skip: the documented setting would not work.
    assert memory.arrow_pool(name).backend_name == name
    default = run_export(None)
    other = run_export(f" {name.upper()} ")  # case and blanks, as a worker's environment may hold them
    assert other["backend"] == name
    assert other["sha256"] == default["sha256"]
    assert other["jemalloc_conf"] == memory.JEMALLOC_CONF  # set at import, whichever pool is then chosen


def test_unknown_allocator_is_one_line_naming_the_variable() -> None:
    with pytest.raises(memory.AllocatorError) as caught:
        memory.arrow_pool("tcmalloc")
    message = str(caught.value)
    assert message == (
        "SUBSCRIPTION_EXPORTS_ARROW_ALLOCATOR='tcmalloc' is not an allocator: use one of system, jemalloc, mimalloc"
    )
    assert "\n" not in message


LOAD_OUTSIDE_GC = """
import gc, json, sys
sys.path.insert(0, {plugins!r})
from subscription_exports import loading
collections = []
gc.callbacks.append(lambda phase, info: phase == "stop" and collections.append(info["generation"]))
{before}
loading.load_export_modules()
first = {{"enabled": gc.isenabled(), "frozen": gc.get_freeze_count(), "collections": list(collections),
         "loaded": all(name in sys.modules for name in loading.EXPORT_MODULES)}}
frozen = gc.get_freeze_count()
loading.load_export_modules()  # loaded already: nothing more is frozen
print(json.dumps(first | {{"frozen_again": gc.get_freeze_count() - frozen}}))
"""


@pytest.mark.parametrize("collector_on", [True, False])
def test_the_export_libraries_load_without_a_collection_and_are_frozen(collector_on: bool) -> None:
    """pandas, pyarrow, numpy and boto3 load with the collector paused (no full collection walks their
    ~300,000 objects), are frozen out of later collections, and the collector's state is restored."""
    code = LOAD_OUTSIDE_GC.format(plugins=str(PLUGINS), before="" if collector_on else "gc.disable()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] and result["enabled"] is collector_on
    assert result["collections"] == [] and result["frozen"] > 100_000 and result["frozen_again"] == 0


def test_numpy_starts_no_blas_threads_in_an_export_process() -> None:
    # OpenBLAS's threads spin after numpy loads (0.15-0.24 CPU-s of an export, docs/performance.md):
    # the package asks for one (no extra thread) unless the worker set its own number.
    code = (
        f"import os, sys; sys.path.insert(0, {str(PLUGINS)!r}); import subscription_exports, numpy; "
        "print(os.environ['OPENBLAS_NUM_THREADS'], len(os.listdir('/proc/self/task')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    ours = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert ours.stdout.split() == ["1", "1"]  # the main thread alone
    two = env | {"OPENBLAS_NUM_THREADS": "2"}
    kept = subprocess.run([sys.executable, "-c", code], env=two, capture_output=True, text=True, check=True)
    assert kept.stdout.split() == ["2", "2"]  # the worker's own choice: OpenBLAS's thread beside the main one

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

from subscription_exports import memory

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"

# Parse, shape and encode a hostile day (quotes, CR, LF, commas at every offset of small blocks) in
# a fresh process, then print the backend in use and a digest of the bytes.
EXPORT_IN_PROCESS = """
import hashlib, json, os, sys
sys.path.insert(0, {plugins!r})
import pyarrow as pa
from subscription_exports import memory, parsing, transform
from subscription_exports.tables import EVENTS
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
                  "jemalloc_conf": os.environ.get("JE_ARROW_MALLOC_CONF")}}))
"""


def run_export(allocator: str | None, jemalloc_conf: str | None = None) -> dict:
    unset = (memory.ALLOCATOR_VARIABLE, memory.JEMALLOC_CONF_VARIABLE)
    env = {k: v for k, v in os.environ.items() if k not in unset}
    if allocator is not None:
        env[memory.ALLOCATOR_VARIABLE] = allocator
    if jemalloc_conf is not None:
        env[memory.JEMALLOC_CONF_VARIABLE] = jemalloc_conf
    done = subprocess.run(
        [sys.executable, "-c", EXPORT_IN_PROCESS.format(plugins=str(PLUGINS))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_default_is_jemalloc_configured_before_its_first_allocation() -> None:
    # jemalloc reads JE_ARROW_MALLOC_CONF once, when Arrow first allocates from it: the export sets
    # it before it asks for the pool (pyarrow's own default pool is mimalloc, so nothing came first).
    default = run_export(None)
    assert default["backend"] == "jemalloc"
    assert default["jemalloc_conf"] == memory.JEMALLOC_CONF == "narenas:1,tcache:false,muzzy_decay_ms:0"


def test_a_workers_own_jemalloc_settings_are_kept() -> None:
    assert run_export(None, jemalloc_conf="dirty_decay_ms:500")["jemalloc_conf"] == "dirty_decay_ms:500"


@pytest.mark.parametrize("name", ["system", "mimalloc"])
def test_another_allocator_writes_the_same_bytes(name: str) -> None:
    # pyarrow's Linux wheels (the locks pin them) carry all three; a build without one is a failure here
    # (AllocatorError, "this pyarrow is built without ..."), not a skip: the documented setting would not work.
    assert memory.arrow_pool(name).backend_name == name
    default = run_export(None)
    other = run_export(f" {name.upper()} ")  # case and blanks, as a worker's environment may hold them
    assert other["backend"] == name
    assert other["sha256"] == default["sha256"]
    assert other["jemalloc_conf"] is None  # jemalloc's settings only when jemalloc is used


def test_unknown_allocator_is_one_line_naming_the_variable() -> None:
    with pytest.raises(memory.AllocatorError) as caught:
        memory.arrow_pool("tcmalloc")
    message = str(caught.value)
    assert message == (
        "SUBSCRIPTION_EXPORTS_ARROW_ALLOCATOR='tcmalloc' is not an allocator: use one of system, jemalloc, mimalloc"
    )
    assert "\n" not in message

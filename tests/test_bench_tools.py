"""The benchmark's own instruments (devtools/bench.py): what its memory figures are made of."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil

from devtools.bench import ROOT, evict_library_pages, fence_seconds, tree_memory

CHILD_MIB = 64


def test_tree_memory_counts_a_childs_anonymous_memory():
    """The peak of an export is its process tree's, split into anonymous and file-backed memory."""
    holder = f"b = bytearray({CHILD_MIB} << 20); print('ready', flush=True); input()"
    shell = subprocess.Popen(
        ["sh", "-c", f'{sys.executable} -c "{holder}"'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert shell.stdout.readline().strip() == "ready"
        rss, anon = tree_memory(psutil.Process(shell.pid))
        assert anon >= CHILD_MIB << 20  # the bytearray lives in the shell's child
        assert rss > anon  # and the interpreter's own code is file-backed
    finally:
        shell.communicate("\n", timeout=30)


def test_evict_library_pages_covers_the_shared_objects_and_changes_no_byte(tmp_path):
    site = tmp_path / "lib" / "python3.11" / "site-packages" / "pkg"
    site.mkdir(parents=True)
    files = {"_native.cpython-311-x86_64-linux-gnu.so": b"\x7fELF one", "libdep.so.26": b"\x7fELF two"}
    for name, content in files.items():
        (site / name).write_bytes(content)
    (site / "module.py").write_text("x = 1\n")
    assert evict_library_pages(tmp_path) == 2
    assert {name: (site / name).read_bytes() for name in files} == files


def test_the_fence_measurement_times_the_fences_own_code(tmp_path):
    """``make bench``'s fence figures come from the package's real parse: if the functions it times
    were renamed, the fence's own CPU would read 0 instead of failing."""
    rows = [f'{i},"a,b",x\n' if i % 7 else f'{i},"q""\r\nq",\n' for i in range(20_000)]
    csv_path = tmp_path / "copy.csv"
    csv_path.write_text("id,text,other\n" + "".join(rows))
    bare, fenced, bare_cpu, fenced_cpu, own_cpu = fence_seconds(csv_path, 1)
    assert min(bare, fenced, bare_cpu, fenced_cpu) > 0
    assert 0 < own_cpu < fenced_cpu


def test_the_measured_paths_do_not_inherit_what_the_package_set_in_the_bench():
    """Importing the package sets allocator and thread variables in the bench's own process; the
    paths it starts (SqlToS3Operator above all) must run with their own defaults, as a task does."""
    names = ["JE_ARROW_MALLOC_CONF", "ARROW_DEFAULT_MEMORY_POOL", "OPENBLAS_NUM_THREADS"]
    code = (
        f"import json, os, sys, types; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'plugins')!r}]; "
        "from devtools import bench; "
        "env = bench.bench_env(types.SimpleNamespace(endpoint_url='http://store'), 'postgresql://db'); "
        f"print(json.dumps([[os.environ.get(n) for n in {names!r}], [env.get(n) for n in {names!r}]]))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in names}
    here, inherited = json.loads(
        subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True).stdout
    )
    assert None not in here  # the bench's process imported the package, which set them
    assert inherited == [None, None, None]
    mine = subprocess.run(
        [sys.executable, "-c", code],
        env=clean | {"OPENBLAS_NUM_THREADS": "4"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(mine.stdout)[1][2] == "4"  # a value the person running the bench set is passed on

"""Micro-benchmark of the transform alone: open_chunks -> shape -> encode_rows over an intermediate CSV.

    python -m devtools.bench_transform FILE.csv --table events [--group-bytes N] [--repeat 5]

Each run is its own process (so peak RSS is that run's); prints the median seconds of the loop, the
import cost and the peak RSS (VmHWM). No database or store: the CSV is the file COPY wrote.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUN = """
import json, os, sys, time
sys.path[:0] = [{plugins!r}]
started = time.monotonic()
import pyarrow
imported_arrow = time.monotonic()
from subscription_exports import transform
from subscription_exports import parsing
from subscription_exports.tables import TABLES
imported = time.monotonic()
rss_imported = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
spec = TABLES[{table!r}]
options = transform.ShapeOptions(with_attributes={attributes!r} and spec.supports_attributes)
size = rows = 0
loop, loop_cpu = time.monotonic(), time.process_time()
with open({csv!r}, "rb") as stream:
    chunks = parsing.open_chunks(stream, transform.source_columns(spec))
    chunks = transform.grouped(chunks, {group_bytes!r} or transform.SHAPE_BYTES)
    for batch in chunks:
        size += len(transform.encode_rows(transform.shape(batch, spec, options)))
        rows += batch.num_rows
done, done_cpu = time.monotonic(), time.process_time()
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps(dict(transform_import=imported - imported_arrow, loop=done - loop, loop_cpu=done_cpu - loop_cpu,
                      rows=rows, bytes=size, peak_mb=hwm / 1024, rss_imported_mb=rss_imported)))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--table", default="events")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--attributes", action="store_true")
    parser.add_argument("--group-bytes", type=int, default=0, help="bytes of parsed chunks shaped at once")
    args = parser.parse_args(argv)
    code = RUN.format(plugins=str(ROOT / "plugins"), table=args.table, csv=args.csv,
                      attributes=args.attributes, group_bytes=args.group_bytes)  # fmt: skip
    runs = []
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    loops = [r["loop"] for r in runs]
    print(json.dumps({
        "table": args.table, "rows": runs[0]["rows"], "bytes": runs[0]["bytes"],
        "loop_median_s": round(statistics.median(loops), 3), "loops_s": [round(v, 3) for v in loops],
        "loop_cpu_median_s": round(statistics.median(r["loop_cpu"] for r in runs), 3),
        "loop_cpu_min_s": round(min(r["loop_cpu"] for r in runs), 3),
        "transform_import_median_s": round(statistics.median(r["transform_import"] for r in runs), 3),
        "peak_rss_mb_max": round(max(r["peak_mb"] for r in runs)),
        "rss_after_imports_mb": round(max(r["rss_imported_mb"] for r in runs)),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

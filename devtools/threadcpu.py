"""CPU seconds per thread of the current process, grouped by what the thread does (`make bench`).

Linux keeps user and system time per thread in ``/proc/self/task/TID/stat``. A sampler thread
reads them every ``interval`` seconds and keeps the last value of every thread it has seen, so a
thread that ends (a finished upload pool) still counts up to its last sample. Python 3.11 does not
give its threads OS-level names, so threads are named through ``threading.enumerate()``
(``native_id`` -> ``Thread.name``); threads Python does not know are Arrow's native pool (the CSV
parse runs there with ``use_threads=True``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")

SAMPLER = "this sampler"
# Thread name prefix -> the part of the export it runs (exporter threads are named where they start).
GROUPS = (
    ("MainThread", "main: shaping, encoding, parse hand-off"),
    ("source-producer", "COPY reader (source)"),
    ("s3-part", "upload (multipart parts)"),
    ("bench-cpu-sampler", SAMPLER),
)
NATIVE = "Arrow native pool: CSV parse"
OTHER = "other Python threads"


def _thread_seconds(tid: int) -> float | None:
    try:
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)


def _group(name: str | None) -> str:
    if name is None:
        return NATIVE
    return next((label for prefix, label in GROUPS if name.startswith(prefix)), OTHER)


class ThreadCpu:
    """``with ThreadCpu() as cpu: ...`` then ``cpu.by_group()``: CPU seconds per thread group."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self._last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-cpu-sampler", daemon=True)

    def sample(self) -> None:
        names = {t.native_id: t.name for t in threading.enumerate()}
        for entry in os.listdir("/proc/self/task"):
            tid = int(entry)
            seconds = _thread_seconds(tid)
            if seconds is not None:
                self._last[tid] = (_group(names.get(tid)), seconds)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ThreadCpu:
        self.sample()
        self._start = {tid: seconds for tid, (_, seconds) in self._last.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def by_group(self) -> dict[str, float]:
        """CPU seconds spent inside the ``with`` block, per group (threads alive before it: only their increase)."""
        totals: dict[str, float] = {}
        for tid, (group, seconds) in self._last.items():
            spent = seconds - self._start.get(tid, 0.0)
            totals[group] = totals.get(group, 0.0) + max(spent, 0.0)
        return dict(sorted(totals.items(), key=lambda item: -item[1]))


def process_cpu() -> float:
    """User + system seconds of this process, all threads (``time.process_time``)."""
    return time.process_time()

"""Fail when a lock file (locks/airflow-<version>.txt) is out of step with what it was compiled from.

Each tested Airflow version has an input ``locks/airflow-<version>.in`` (``apache-airflow==<version>``)
and a lock compiled from it with requirements-dev.txt (``make lock``). For every lock:

* it pins the Airflow version of its input;
* every exact pin of requirements-dev.txt (the development tools) appears with the same version;
* every requirement of requirements.txt (ranges: what a deployment installs on top of its Airflow)
  is satisfied by the locked version, so the ranges cover what the tests run with.

And requirements.txt never names apache-airflow: installing it must not change a deployment's Airflow.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "locks"
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)")


def requirements(path: Path) -> list[Requirement]:
    """The requirements of one file, following ``-r`` includes."""
    found: list[Requirement] = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += requirements(path.parent / line[3:].strip())
        elif line and not line.startswith("-"):
            found.append(Requirement(line))
    return found


def locked(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if m := PIN.match(line.strip()):
            found[canonicalize_name(re.sub(r"\[.*\]", "", m.group(1)))] = m.group(2)
    return found


def problems_of(lock: Path, inputs: list[Requirement], runtime: list[Requirement]) -> list[str]:
    pins = locked(lock)
    problems = []
    for req in inputs:
        name = canonicalize_name(req.name)
        version = pins.get(name)
        if req in runtime:
            if version is None or not req.specifier.contains(version, prereleases=True):
                problems.append(f"requirements.txt asks for {req} but the lock has {version or 'nothing'}")
        else:
            pinned = [s.version for s in req.specifier if s.operator == "=="]
            if pinned and version != pinned[0]:
                problems.append(f"{req} is pinned but the lock has {version or 'nothing'}")
    return problems


def main() -> int:
    runtime = requirements(ROOT / "requirements.txt")
    dev = requirements(ROOT / "requirements-dev.txt")
    problems: list[str] = []
    if any(canonicalize_name(r.name) == "apache-airflow" for r in runtime):
        problems.append("requirements.txt names apache-airflow: a deployment's Airflow must stay as it is")
    inputs = sorted(LOCKS.glob("airflow-*.in"))
    if not inputs:
        problems.append("no lock inputs (locks/airflow-<version>.in)")
    for orphan in sorted(set(LOCKS.glob("airflow-*.txt")) - {i.with_suffix(".txt") for i in inputs}):
        problems.append(f"{orphan.name} has no {orphan.with_suffix('.in').name}")
    for source in inputs:
        lock = source.with_suffix(".txt")
        if not lock.is_file():
            problems.append(f"{lock.name} is missing; run `make lock`")
            continue
        problems += [f"{lock.name}: {p}" for p in problems_of(lock, requirements(source) + dev, runtime)]
    for problem in problems:
        print(f"lock out of date: {problem}; run `make lock`", file=sys.stderr)
    if not problems:
        print(f"{len(inputs)} lock files match requirements.txt and the {len(dev)} development requirements")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Fail when a lock file (locks/airflow-<version>.txt) is out of step with what it was compiled from.

Each tested Airflow version has an input ``locks/airflow-<version>.in`` (``apache-airflow==<version>``)
and a lock compiled from it with requirements-dev.txt (``make lock``). For every lock:

* it pins the Airflow version of its input;
* every exact pin of requirements-dev.txt (the development tools) appears with the same version;
* every requirement of requirements.txt (ranges: what a deployment installs on top of its Airflow)
  is satisfied by the locked version, so the ranges cover what the tests run with.

And requirements.txt never names apache-airflow: installing it must not change a deployment's Airflow.

The platform sets (``locks/platform-<version>.txt``, Airflow's constraints of each supported release's
day, ``make platform-sets``): one per ``devtools.platform_sets.PLATFORM_VERSIONS``, none other; each
records in its header the inputs the generator uses now (requirement, Python; ``--online`` also reads
the release day from PyPI again and compares); and every range of requirements.txt admits the version
each set pins (offline; tests/test_platform_sets.py resolves requirements.txt against each with uv), and so does every
development requirement (``make venv PLATFORM=<version>`` installs them on the set).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devtools import platform_sets

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


def range_conflicts(platform_set: Path, runtime: list[Requirement], source: str = "requirements.txt") -> list[str]:
    """Each requirement (of ``source``) that excludes the version a platform set pins, naming both."""
    pins = locked(platform_set)
    return [
        f"{source} asks for {req} but {platform_set.name} pins {req.name}=={pins[canonicalize_name(req.name)]}"
        for req in runtime
        if canonicalize_name(req.name) in pins
        and not req.specifier.contains(pins[canonicalize_name(req.name)], prereleases=True)
    ]


def platform_problems(runtime: list[Requirement], dev: list[Requirement], *, online: bool) -> list[str]:
    problems = []
    wanted = {platform_sets.set_path(v): v for v in platform_sets.PLATFORM_VERSIONS}
    for stray in sorted(set(LOCKS.glob("platform-*.txt")) - set(wanted)):
        problems.append(f"{stray.name} is no supported version's set (devtools/platform_sets.py PLATFORM_VERSIONS)")
    for path, version in wanted.items():
        found = platform_sets.recorded(path)
        if found is None:
            problems.append(f"{path.name} is missing or has no header; run `make platform-sets`")
            continue
        if (found.requirement, found.python) != (platform_sets.requirement_of(version), platform_sets.PLATFORM_PYTHON):
            problems.append(f"{path.name} was made from {found.requirement} for Python {found.python}")
        if online and found != (now := platform_sets.platform_set_of(version)):
            problems.append(f"{path.name} records {found.header()[2:]}, PyPI now gives {now.header()[2:]}")
        problems += range_conflicts(path, runtime)
        # `make venv PLATFORM=...` installs the development tools on the set too, changing no pin of it.
        problems += range_conflicts(path, [r for r in dev if r not in runtime], "requirements-dev.txt")
    return problems


def main(argv: list[str] | None = None) -> int:
    online = "--online" in (sys.argv[1:] if argv is None else argv)
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
    platform = platform_problems(runtime, dev, online=online)
    for problem in platform:
        print(f"platform set: {problem}", file=sys.stderr)
    if not problems:
        print(f"{len(inputs)} lock files match requirements.txt and the {len(dev)} development requirements")
    if not platform:
        print(
            f"{len(platform_sets.PLATFORM_VERSIONS)} platform sets made from their inputs"
            f"{' (release days checked on PyPI)' if online else ''}; "
            "requirements.txt and requirements-dev.txt admit every pin of them"
        )
    return 1 if problems or platform else 0


if __name__ == "__main__":
    sys.exit(main())

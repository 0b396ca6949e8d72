"""Re-create the platform sets: Airflow's constraints of each supported release, as users' platforms install.

Managed services (MWAA, Cloud Composer), the official image and most company images install extra
requirements on top of Airflow with Airflow's constraints file of that version, which pins every
provider and library at the highest version PyPI offered when that Airflow was released. This module
re-creates those files the way Airflow makes them, offline from GitHub: ``apache-airflow[all]==X``
(every provider) compiled with ``uv pip compile --python-version 3.12 --exclude-newer <end of the
release day>``, the release day read from PyPI (the upload time of ``apache-airflow`` X's files), not
typed in. Each file (``locks/platform-<version>.txt``) starts with a header that records those inputs,
which ``devtools/lockcheck.py`` compares with ``PLATFORM_VERSIONS`` offline (``--online`` also asks PyPI
for the release day again).

    python -m devtools.platform_sets              # (re)create every set (make platform-sets)
    python -m devtools.platform_sets 3.1.8        # one of them
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "locks"
# The newest patch of each supported minor (docs/deploy.md). Airflow 3.0's set is not kept here: it
# cannot take requirements.txt (docs/deploy.md, "Airflow 3.0"), and every set in locks/ must.
PLATFORM_VERSIONS = ("3.1.8", "3.2.2", "3.3.2")
PLATFORM_PYTHON = "3.12"  # the Python of the managed services' Airflow 3 images
SIMPLE_INDEX = "https://pypi.org/simple/{name}/"
HEADER = re.compile(
    r"^# platform set: (?P<requirement>\S+) python (?P<python>\S+) "
    r"released (?P<released>\S+) exclude-newer (?P<exclude_newer>\S+)$"
)


@dataclass(frozen=True)
class PlatformSet:
    """The inputs of one platform set, as its header records them."""

    requirement: str
    python: str
    released: str  # the last upload of apache-airflow <version>'s files, ISO 8601 UTC
    exclude_newer: str  # the end of that day (UTC): what PyPI offered on the release day

    def header(self) -> str:
        return (
            f"# platform set: {self.requirement} python {self.python} "
            f"released {self.released} exclude-newer {self.exclude_newer}"
        )


def set_path(version: str) -> Path:
    return LOCKS / f"platform-{version}.txt"


def requirement_of(version: str) -> str:
    return f"apache-airflow[all]=={version}"


def release_time(version: str, name: str = "apache-airflow") -> dt.datetime:
    """When PyPI received the last file of ``name==version`` (its simple index's ``upload-time``)."""
    request = urllib.request.Request(
        SIMPLE_INDEX.format(name=name), headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        files = json.load(response)["files"]
    project = "[-_.]".join(re.escape(part) for part in re.split(r"[-_.]", name))
    stem = re.compile(rf"^{project}-{re.escape(version)}(\.tar\.gz|-.*\.whl)$", re.IGNORECASE)
    times = [f["upload-time"] for f in files if stem.match(f["filename"])]
    if not times:
        raise SystemExit(f"PyPI has no files of {name}=={version}")
    return max(dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in times)


def platform_set_of(version: str) -> PlatformSet:
    released = release_time(version).astimezone(dt.UTC)
    day_end = dt.datetime.combine(released.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    return PlatformSet(
        requirement=requirement_of(version),
        python=PLATFORM_PYTHON,
        released=released.strftime("%Y-%m-%dT%H:%M:%SZ"),
        exclude_newer=day_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def recorded(path: Path) -> PlatformSet | None:
    """The inputs a committed set records in its first line, or None when it has no such header."""
    if not path.is_file():
        return None
    first = path.read_text().split("\n", 1)[0]
    m = HEADER.match(first)
    return PlatformSet(**m.groupdict()) if m else None


def uv() -> str:
    here = Path(sys.executable).with_name("uv")
    found = str(here) if here.exists() else shutil.which("uv")
    if not found:
        raise SystemExit("uv not found: run `make venv` first")
    return found


def compile_set(version: str) -> Path:
    """Write locks/platform-<version>.txt: the header, then uv's compiled pins."""
    inputs = platform_set_of(version)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "platform.in"
        source.write_text(inputs.requirement + "\n")
        out = Path(tmp) / "platform.txt"
        subprocess.run(
            [
                uv(), "pip", "compile", "--quiet", "--no-header", "--no-annotate",
                "--python-version", inputs.python, "--exclude-newer", inputs.exclude_newer,
                str(source), "-o", str(out),
            ],
            check=True,
        )  # fmt: skip
        pins = out.read_text()
    path = set_path(version)
    path.write_text(
        f"{inputs.header()}\n"
        f"# Airflow {version}'s constraints as its release day made them (every provider, the highest\n"
        f"# versions PyPI offered then), re-created by `make platform-sets` (devtools/platform_sets.py).\n"
        f"# requirements.txt must install on top of this without changing any pin (tests/test_platform_sets.py).\n"
        f"{pins}"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="*", default=list(PLATFORM_VERSIONS))
    args = parser.parse_args(argv)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for path in pool.map(compile_set, args.versions):
            print(f"{path.relative_to(ROOT)}: {recorded(path).header()[2:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""requirements.txt installs on top of every supported release's platform set without changing a pin.

A platform set (``locks/platform-<version>.txt``, ``make platform-sets``) is Airflow's constraints file of
that release's day: what MWAA, Cloud Composer, the official image and most company images install with.
Each is resolved here with uv against PyPI (``uv pip compile requirements.txt -c <set>``, as pip does
with ``--constraint``); a range that excludes a pinned version fails naming the package and both
versions. Needs PyPI (the development and CI machines reach it); the offline half of the same check
runs in ``make lint`` (devtools/lockcheck.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devtools import lockcheck, platform_sets

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"


def install_problems(platform_set: Path, requirements: Path, tmp_path: Path) -> list[str]:
    """What keeps ``requirements`` from installing on ``platform_set`` unchanged; empty when nothing does."""
    runtime = lockcheck.requirements(requirements)
    conflicts = lockcheck.range_conflicts(platform_set, runtime)
    if conflicts:
        return conflicts
    resolved = tmp_path / f"resolved-{platform_set.stem}.txt"
    result = subprocess.run(
        [
            platform_sets.uv(), "pip", "compile", "--quiet", "--no-header", "--no-annotate",
            "--python-version", platform_sets.PLATFORM_PYTHON,
            str(requirements), "-c", str(platform_set), "-o", str(resolved),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if result.returncode != 0:
        return [f"uv cannot install requirements.txt on {platform_set.name}: {' '.join(result.stderr.split())[:1500]}"]
    pins, got = lockcheck.locked(platform_set), lockcheck.locked(resolved)
    return [
        f"{name} would change from {pins[name]} ({platform_set.name}) to {version}"
        for name, version in sorted(got.items())
        if name in pins and pins[name] != version
    ]


@pytest.mark.parametrize("version", platform_sets.PLATFORM_VERSIONS)
def test_requirements_install_on_the_platform_set_unchanged(version, tmp_path):
    platform_set = platform_sets.set_path(version)
    assert platform_sets.recorded(platform_set), f"{platform_set.name} is missing; run `make platform-sets`"
    assert install_problems(platform_set, REQUIREMENTS, tmp_path) == []


def test_a_range_that_excludes_a_pin_is_named_with_both_versions(tmp_path):
    """The check itself: pandas>=3.1.1 (the lower bound before the platform sets) on Airflow 3.1.8's set."""
    narrowed = tmp_path / "requirements.txt"
    narrowed.write_text(REQUIREMENTS.read_text().replace("pandas>=2.3.3,<4", "pandas>=3.1.1,<4"))
    problems = install_problems(platform_sets.set_path("3.1.8"), narrowed, tmp_path)
    assert problems == ["requirements.txt asks for pandas<4,>=3.1.1 but platform-3.1.8.txt pins pandas==2.3.3"]


def test_a_package_the_set_lacks_is_added_and_uv_names_what_cannot_be(tmp_path):
    """A line the set does not pin is resolved by uv; one that cannot coexist with the pins fails with uv's reason."""
    platform_set = platform_sets.set_path("3.1.8")
    clashing = tmp_path / "requirements.txt"
    # numba 0.61.0 (not in the set) needs numpy <2.2; the set pins numpy 2.4.3.
    clashing.write_text(REQUIREMENTS.read_text() + "numba==0.61.0\n")
    problems = install_problems(platform_set, clashing, tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith("uv cannot install requirements.txt on platform-3.1.8.txt:")
    assert "numba==0.61.0 depends on numpy>=1.24,<2.2 and you require numpy==2.4.3" in problems[0]


def test_lockcheck_names_a_set_made_from_other_inputs_a_missing_one_and_a_stray_one(tmp_path, monkeypatch):
    """`make lint`'s offline check of the committed sets: made from what the generator uses now, one per version."""
    for version in platform_sets.PLATFORM_VERSIONS:
        (tmp_path / f"platform-{version}.txt").write_text(platform_sets.set_path(version).read_text())
    monkeypatch.setattr(platform_sets, "LOCKS", tmp_path)
    monkeypatch.setattr(lockcheck, "LOCKS", tmp_path)
    runtime = lockcheck.requirements(REQUIREMENTS)
    assert lockcheck.platform_problems(runtime, [], online=False) == []
    oldest, newest = platform_sets.PLATFORM_VERSIONS[0], platform_sets.PLATFORM_VERSIONS[-1]
    made = tmp_path / f"platform-{oldest}.txt"
    made.write_text(made.read_text().replace("python 3.12", "python 3.11", 1))
    (tmp_path / f"platform-{newest}.txt").unlink()
    (tmp_path / "platform-3.0.6.txt").write_text("")
    assert lockcheck.platform_problems(runtime, [], online=False) == [
        "platform-3.0.6.txt is no supported version's set (devtools/platform_sets.py PLATFORM_VERSIONS)",
        f"platform-{oldest}.txt was made from apache-airflow[all]=={oldest} for Python 3.11",
        f"platform-{newest}.txt is missing or has no header; run `make platform-sets`",
    ]

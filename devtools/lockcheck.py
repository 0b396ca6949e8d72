"""Fail when requirements.lock is out of step with requirements.txt / requirements-dev.txt.

Every pin in the requirement files must appear, with the same version, in the lock.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)")


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
        elif m := PIN.match(line):
            found[re.sub(r"\[.*\]", "", m.group(1)).lower().replace("_", "-")] = m.group(2)
    return found


def main() -> int:
    wanted = pins(ROOT / "requirements-dev.txt")
    locked = pins(ROOT / "requirements.lock")
    problems = [
        f"{name}=={version} is pinned but the lock has {locked.get(name, 'nothing')}"
        for name, version in sorted(wanted.items())
        if locked.get(name) != version
    ]
    for problem in problems:
        print(f"requirements.lock out of date: {problem}; run `make lock`", file=sys.stderr)
    if not problems:
        print(f"requirements.lock matches {len(wanted)} pins")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Rewrite README.md's table sections from the table declarations (subscription_exports.tables).

Each table's section sits between `<!-- table:NAME -->` and `<!-- /table:NAME -->`; a test
fails when the README and the declarations drift apart.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from subscription_exports.tables import TABLES, markdown_table  # noqa: E402


def render(readme: str) -> str:
    for name, spec in TABLES.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table:{name} -->)", re.S)
        readme, count = pattern.subn(lambda m, spec=spec: m.group(1) + markdown_table(spec) + "\n" + m.group(2), readme)
        if count != 1:
            raise SystemExit(f"README.md: expected one <!-- table:{name} --> section, found {count}")
    return readme


def main() -> None:
    path = ROOT / "README.md"
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"updated {path.name}")


if __name__ == "__main__":
    main()

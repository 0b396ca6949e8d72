"""Rewrite docs/table-shapes.md's table sections from the table declarations (subscription_exports.tables).

Each table's section sits between `<!-- table:NAME -->` and `<!-- /table:NAME -->`; a test
(tests/test_docs.py) fails when the page and the declarations drift apart.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "table-shapes.md"
sys.path.insert(0, str(ROOT / "plugins"))

from subscription_exports.tables import TABLES, markdown_table  # noqa: E402


def render(page: str) -> str:
    for name, spec in TABLES.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table:{name} -->)", re.S)
        page, count = pattern.subn(lambda m, spec=spec: m.group(1) + markdown_table(spec) + "\n" + m.group(2), page)
        if count != 1:
            raise SystemExit(f"{PAGE.relative_to(ROOT)}: expected one <!-- table:{name} --> section, found {count}")
    return page


def main() -> None:
    PAGE.write_text(render(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"updated {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

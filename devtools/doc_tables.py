"""Rewrite docs/table-shapes.md's table sections from the table declarations (subscription_exports.tables).

Each table's section sits between `<!-- table:NAME -->` and `<!-- /table:NAME -->`; a test
(tests/test_docs.py) fails when the page and the declarations drift apart.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "table-shapes.md"
sys.path.insert(0, str(ROOT / "plugins"))

from subscription_exports.tables import TABLES, markdown_table  # noqa: E402


def replace_section(page: str, marker: str, body: str, path: Path = PAGE) -> str:
    """``page`` with what lies between ``<!-- marker -->`` and ``<!-- /marker -->`` replaced by ``body``."""
    pattern = re.compile(rf"(<!-- {re.escape(marker)} -->\n).*?(<!-- /{re.escape(marker)} -->)", re.S)
    page, count = pattern.subn(lambda m: m.group(1) + body + m.group(2), page)
    if count != 1:
        raise SystemExit(f"{path.relative_to(ROOT)}: expected one <!-- {marker} --> section, found {count}")
    return page


def rewrite(path: Path, render: Callable[[str], str]) -> None:
    """Write ``render`` of the page at ``path`` back to it."""
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"updated {path.relative_to(ROOT)}")


def render(page: str) -> str:
    for name, spec in TABLES.items():
        page = replace_section(page, f"table:{name}", markdown_table(spec) + "\n")
    return page


if __name__ == "__main__":
    rewrite(PAGE, render)

"""The front door and the docs/ pages: links resolve, table shapes match the declarations."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from subscription_exports import tables

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TABLE_PAGE = ROOT / "docs" / "table-shapes.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"(`+).+?\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)


def _prose(text: str) -> str:
    """The markdown without code blocks and inline code (links there are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").replace("*", "").lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a page, with GitHub's -1, -2 ... suffixes for repeated headings."""
    seen: dict[str, int] = {}
    result = set()
    for _, heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = github_anchor(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def test_anchor_rules() -> None:
    assert github_anchor("Scale-out, Assets and observability") == "scale-out-assets-and-observability"
    assert github_anchor("`events`") == "events"
    assert github_anchor("Unfinished multipart uploads: add a lifecycle rule") == (
        "unfinished-multipart-uploads-add-a-lifecycle-rule"
    )
    assert github_anchor("Airflow 2's `airflow dags backfill` and Airflow 3's `airflow backfill create`") == (
        "airflow-2s-airflow-dags-backfill-and-airflow-3s-airflow-backfill-create"
    )


def broken_links(page: Path) -> list[str]:
    """Each relative link of ``page`` whose file or #anchor does not exist, with the reason."""
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(f"{target}: {resolved} does not exist")
        elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
            broken.append(f"{target}: no heading with anchor #{anchor} in {resolved.name}")
    return broken


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Same\n\n## Same\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#same-1) [ok](#page) [ok](https://example.com/x#y) `[code](nowhere.md)`\n"
        "[gone](missing.md) [bad anchor](other.md#same-2) [local](#nope)\n\n```\n[fenced](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    assert [b.split(":")[0] for b in broken_links(page)] == ["missing.md", "other.md#same-2", "#nope"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    broken = broken_links(page)
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_readme_links_every_docs_page() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [p.name for p in PAGES[1:] if f"(docs/{p.name}" not in text]
    assert not missing, f"README.md does not link docs pages {missing}"


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


@pytest.mark.parametrize("spec", list(tables.TABLES.values()), ids=lambda s: s.name)
def test_table_shape_sections_match_declarations(spec: tables.TableSpec) -> None:
    fix = "run `.venv/bin/python -m devtools.doc_tables` to write the table sections"
    page = TABLE_PAGE.relative_to(ROOT)
    if not TABLE_PAGE.is_file():
        pytest.fail(f"{page} does not exist; {fix}", pytrace=False)
    text = TABLE_PAGE.read_text(encoding="utf-8")
    start, end = f"<!-- table:{spec.name} -->", f"<!-- /table:{spec.name} -->"
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        pytest.fail(f"{page} lacks one '{start}' ... '{end}' section; {fix}", pytrace=False)
    section = text[text.index(start) + len(start) : text.index(end)].strip("\n")
    if section != tables.markdown_table(spec):
        pytest.fail(f"{page} table '{spec.name}' differs from tables.{spec.name.upper()}; {fix}", pytrace=False)


REPO_PATH = re.compile(r"`((?:dags|plugins|include|devtools|tests|docs|docker|\.ci)/[A-Za-z0-9_./-]*)`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_paths_named_in_docs_exist(page: Path) -> None:
    missing = sorted({p for p in REPO_PATH.findall(page.read_text(encoding="utf-8")) if not (ROOT / p).exists()})
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_readme_transform_example_is_the_shipped_code() -> None:
    shipped = (ROOT / "include" / "export_transforms" / "privacy.py").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    example = [block for block in blocks if "def hmac_device_ids" in block or "def hash_device_ids" in block]
    assert example, "README.md shows no example of include/export_transforms/privacy.py"
    for block in example:
        assert block in shipped, f"README.md's example differs from include/export_transforms/privacy.py:\n{block}"

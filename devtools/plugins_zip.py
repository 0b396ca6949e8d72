"""Build plugins.zip for a managed Airflow service (``make plugins-zip``; docs/deploy.md).

The zip holds what plugins/ holds (the ``subscription_exports`` package and the plugin module that
registers its timetable and run-note listener) with the project's include/ (SQL, shipped destination
files, example transforms) inside the package, as ``subscription_exports/include/``: such services take
only dags/, plugins.zip and requirements.txt, and the package reads include/ from there when it is
present (``subscription_exports.INCLUDE_DIR``). Entries are sorted and dated 1980-01-01, so the same
tree gives the same bytes.

    python -m devtools.plugins_zip dist/plugins.zip
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "subscription_exports"
SKIPPED_PARTS = {"__pycache__"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _files(base: Path) -> Iterator[Path]:
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if path.is_file() and not SKIPPED_PARTS & set(rel.parts) and path.suffix not in {".pyc", ".pyo"}:
            yield rel


def entries(root: Path = ROOT) -> dict[str, Path]:
    """Archive name -> source file: plugins/ as is, include/ under the package."""
    found = {rel.as_posix(): root / "plugins" / rel for rel in _files(root / "plugins")}
    found |= {f"{PACKAGE}/include/{rel.as_posix()}": root / "include" / rel for rel in _files(root / "include")}
    return dict(sorted(found.items()))


def build(target: Path, root: Path = ROOT) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, source in entries(root).items():
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes())
    return target


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "dist/plugins.zip")
    build(target)
    with zipfile.ZipFile(target) as archive:
        print(f"{target}: {len(archive.namelist())} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

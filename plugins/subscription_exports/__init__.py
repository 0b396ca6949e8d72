"""Daily subscription-data exports to S3: the package behind the export DAGs."""

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent

# The project's include/ (SQL, shipped destination files, example transforms). In this repository's
# layout (Astro-style project, Docker image, development) it is the include/ beside plugins/; a
# plugins.zip for a managed service (`make plugins-zip`, docs/deploy.md) carries a copy inside the
# package, since such services take only dags/, plugins.zip and requirements.txt.
INCLUDE_DIR = _PACKAGE_DIR / "include" if (_PACKAGE_DIR / "include").is_dir() else _PACKAGE_DIR.parents[1] / "include"

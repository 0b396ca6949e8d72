"""Daily subscription-data exports to S3: the package behind the export DAGs."""

from pathlib import Path

# The project's include/ (SQL, shipped destination files, example transforms), beside plugins/.
INCLUDE_DIR = Path(__file__).resolve().parents[2] / "include"

"""``python -m subscription_exports.config check [FILE ...]``: every problem of every destination.

For CI before a deploy (and for a Variable's text saved to a file). Without FILE it checks the
shipped files ``include/destinations/<dag_id>.yaml`` of both DAGs together, including keys that
destinations of the two DAGs could both write. A FILE's DAG comes from its name (``s3_export.yaml``)
or ``--dag-id``. Prints one line per problem and exits 1 if there is any, else prints a summary
and exits 0. Reads only the given files: no Airflow Variable, connection or store is touched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from subscription_exports import alerts, config, keys
from subscription_exports.integrations import INTEGRATIONS, Integration


def check_file(path: Path, integration: Integration) -> tuple[list[str], config.Configuration | None]:
    """(problems, the configuration if its top level is valid)."""
    origin = config.file_origin(path.resolve())
    try:
        document = config.load_document(path.read_text(encoding="utf-8"), origin)
    except OSError as exc:
        return [f"{origin}: cannot read: {exc.strerror or exc}"], None
    except config.ConfigError as exc:
        return [str(exc)], None
    problems = config.document_problems(document, origin=origin)
    top_level_ok = not problems
    entries = document.get("destinations") if isinstance(document, dict) else None
    if isinstance(entries, list):  # names missing or used twice: still check every entry
        for entry in entries:
            if isinstance(entry, dict):
                problems.extend(config.destination_problems(entry, integration, origin=origin))
    if isinstance(document, dict) and document.get("alerts") is not None:
        names = [e.get("name") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else None
        problems.extend(alerts.alerts_problems(document["alerts"], origin=origin, destination_names=names))
    if not top_level_ok:
        return problems, None
    return problems, config.read_configuration(document, integration, origin=origin)


def _alerts_summary(configuration: config.Configuration) -> str:
    """How the file's alerts are sent, for the OK line (problems are listed above it)."""
    try:
        settings = alerts.parse_alerts(configuration.alerts, origin=configuration.origin)
    except alerts.AlertConfigError:
        return ""
    return f"; alerts: {settings.describe()}" if settings else "; alerts: none (no 'alerts:' section)"


def _integration_of(path: Path, dag_id: str | None) -> Integration | None:
    return INTEGRATIONS.get(dag_id or path.name.split(".")[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m subscription_exports config",
        description="Validate destination files: every problem of every destination; exit 1 if any.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check destination files (default: the shipped ones)")
    check.add_argument("files", nargs="*", type=Path, metavar="FILE")
    check.add_argument("--dag-id", choices=sorted(INTEGRATIONS), help="the DAG the FILEs configure")
    args = parser.parse_args(argv)

    targets: list[tuple[Path, Integration]] = []
    if not args.files:
        targets = [(config.INCLUDE_DIR / i.config_file, i) for i in INTEGRATIONS.values()]
    for path in args.files:
        integration = _integration_of(path, args.dag_id)
        if integration is None:
            parser.error(f"{path}: cannot tell which DAG it configures; name it <dag_id>.yaml or pass --dag-id")
        targets.append((path, integration))

    problems: list[str] = []
    configurations: list[config.Configuration] = []
    summary = []
    for path, integration in targets:
        found, configuration = check_file(path, integration)
        problems.extend(found)
        if configuration is not None:
            configurations.append(configuration)
            summary.append(
                f"{integration.dag_id}: {len(configuration.entries)} destination(s) in {path}"
                + _alerts_summary(configuration)
            )
    problems.extend(c.message() for c in keys.configuration_collisions(configurations, limit=1000))
    for line in problems:
        print(line)
    if problems:
        print(f"config check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("config check: OK; " + "; ".join(summary))
    return 0

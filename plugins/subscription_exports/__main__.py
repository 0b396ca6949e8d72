"""``python -m subscription_exports COMMAND``: the package's one command-line entry point.

* ``deliveries --dag-id DAG [--days N] [--json]``: destinations x days from the metadata database
  (subscription_exports.deliveries.cli);
* ``config check [FILE ...]``: every problem of every destination (subscription_exports.config_check);
* ``verify --conn-id CONN s3://...``: an exported object against its manifest (subscription_exports.verify).

The older forms ``python -m subscription_exports.config check`` and ``python -m subscription_exports.verify``
keep working. Each command's module is imported only when it runs.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m subscription_exports", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    deliveries = commands.add_parser("deliveries", help="destinations x days: delivered, failed (cause), not run")
    commands.add_parser("config", help="config check [FILE ...]: every problem of every destination", add_help=False)
    commands.add_parser(
        "verify", help="verify --conn-id CONN s3://...: objects against their manifests", add_help=False
    )
    from subscription_exports.deliveries import cli

    cli.add_arguments(deliveries)
    if argv and argv[0] in ("config", "verify"):
        if argv[0] == "config":
            from subscription_exports.config_check import main as config_main

            return config_main(argv[1:])
        from subscription_exports.verify import main as verify_main

        return verify_main(argv[1:])
    args = parser.parse_args(argv)
    return cli.run(args)


if __name__ == "__main__":
    sys.exit(main())

"""Load the libraries an export runs on once per task process, outside the cyclic garbage collector.

Why: importing pyarrow, numpy, pandas and boto3 creates about 300,000 objects that live as long as
the process and no garbage, yet the allocations trigger full collections, each of which walks every
object in the process: 0.2-0.3 s of CPU in a 1M-row export of about 7 s. Pausing the collector for
the imports and then freezing what exists (``gc.freeze``: later collections skip those objects)
removes that cost. Standard library only, so the DAG files can import it at parse time.
"""

from __future__ import annotations

import gc
import importlib
import sys

# What an export task imports beyond the DAG file: the exporter (pyarrow, numpy, a database driver),
# the transform (pandas) and the S3 client (boto3).
EXPORT_MODULES = ("subscription_exports.exporter", "subscription_exports.transform", "boto3")


def load_export_modules() -> None:
    """Import ``EXPORT_MODULES`` with the collector paused, then freeze; a no-op once they are loaded."""
    if all(name in sys.modules for name in EXPORT_MODULES):
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        for name in EXPORT_MODULES:
            importlib.import_module(name)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()

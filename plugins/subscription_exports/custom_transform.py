"""A destination's own pandas step: ``transform: "module:function"``.

The function is called once per chunk with the shaped ``pandas.DataFrame`` (every column text,
values not yet quoted for CSV) and returns a DataFrame with the same columns in the same order,
still text; the exporter encodes it like any chunk. Modules are imported from ``plugins/``, from
``include/`` or from anywhere else on ``sys.path``.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from subscription_exports import INCLUDE_DIR

if TYPE_CHECKING:  # pandas is imported by the transform, not at DAG parse time
    import pandas as pd

_SPEC_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")

FrameFunction = Callable[["pd.DataFrame"], "pd.DataFrame"]


class TransformError(ValueError):
    """A destination's transform returned something that cannot be encoded as the file."""


def resolve(spec: str, include_dir: Path = INCLUDE_DIR) -> FrameFunction:
    """The function ``spec`` names; ``ValueError`` with a one-line cause when it cannot be had."""
    if not _SPEC_RE.match(spec):
        raise ValueError(f"{spec!r} is not 'module:function' (e.g. 'export_transforms.privacy:hash_device_ids')")
    module_name, function_name = spec.split(":")
    if str(include_dir) not in sys.path:
        sys.path.append(str(include_dir))  # after everything else: never shadows an installed module
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure of the user's module is reported, on one line
        cause = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        raise ValueError(f"cannot import {module_name!r} (plugins/ or include/): {cause}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"module {module_name!r} has no function {function_name!r}")
    return function


def apply(function: FrameFunction, frame: pd.DataFrame, *, spec: str) -> pd.DataFrame:
    """``function(frame)``, checked to keep the file's columns in their order."""
    import pandas as pd

    result = function(frame)
    where = f"transform {spec!r}"  # the export's error line names the destination, connection and object
    if not isinstance(result, pd.DataFrame):
        raise TransformError(f"{where} returned a {type(result).__name__}, not a pandas DataFrame")
    got, want = [str(c) for c in result.columns], [str(c) for c in frame.columns]
    if got != want:
        missing = [c for c in want if c not in got]
        extra = [c for c in got if c not in want]
        detail = f"missing {missing}, unexpected {extra}" if missing or extra else "same columns in another order"
        raise TransformError(f"{where} must return the same columns in the same order: {detail}")
    return result

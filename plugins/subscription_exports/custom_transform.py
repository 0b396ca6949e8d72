"""A destination's own pandas step: ``transform: "module:function"``.

The function is called once per chunk with the shaped ``pandas.DataFrame`` (every column text,
values not yet quoted for CSV) and returns a DataFrame with the same columns in the same order,
still text; the exporter encodes it like any chunk. Modules are imported from ``plugins/``, from
``include/`` or from anywhere else on ``sys.path``.

A step that needs settings or a secret (e.g. the key of a keyed hash) takes a second argument,
``function(frame, connection)``: the Airflow connection the destination names in
``transform_conn_id``, read when the export runs (so the secret stays in the connection or the
secrets backend, never in the destinations file).

What the step returns is checked, never converted: other columns, another order or a column that
is not text (``transform.text_array``) fail that destination with one line (``TransformError``),
without retries, because running the same step on the same rows again returns the same thing.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from subscription_exports import INCLUDE_DIR

if TYPE_CHECKING:  # pandas is imported by the transform, not at DAG parse time
    import pandas as pd

_SPEC_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")

FrameFunction = Callable[["pd.DataFrame"], "pd.DataFrame"]

NOT_TEXT_HINT = "format it yourself (e.g. .astype(str)) so the file says exactly what you mean"


class TransformError(ValueError):
    """A destination's step cannot give this file: what it returned, or what it needs, is wrong.

    Raised with one line naming the destination and the step; the export task fails at once (a
    retry would run the same step on the same rows). A step may raise it itself for a problem of
    its settings (e.g. a connection without a key); its message is then prefixed with the step
    and the destination, so it must never hold a secret.
    """


def resolve(spec: str, include_dir: Path = INCLUDE_DIR) -> Callable[..., Any]:
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


def takes_connection(function: Callable[..., Any]) -> bool | None:
    """True if ``function`` needs ``(frame, connection)``, False if it takes ``(frame)`` only, None if
    it takes either (a second parameter with a default)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: called with the frame only
        return False
    one, two = _binds(signature, 1), _binds(signature, 2)
    if one and two:
        return None
    if not one and not two:
        raise ValueError(
            "must take the frame, def step(frame), or the frame and a connection, def step(frame, connection)"
        )
    return two


def _binds(signature: inspect.Signature, count: int) -> bool:
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def step_connection(conn_id: str, *, destination: str, spec: str) -> Any:
    """The Airflow connection a step reads its settings from, read now (at run time).

    ``TransformError`` (one line) when it is not defined; any other error (e.g. a secrets backend
    that cannot be reached) propagates, so the export is retried.
    """
    from airflow.sdk import BaseHook

    from subscription_exports.compat import connection_undefined

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:
        if not connection_undefined(exc):
            raise
    raise TransformError(
        f"transform {spec!r} of destination {destination!r}: connection {conn_id!r} (transform_conn_id) is not "
        "defined; add it (Admin -> Connections or a secrets backend)"
    )


def prepare(spec: str, *, destination: str, conn_id: str | None = None) -> FrameFunction:
    """The destination's step as a function of the frame, its connection (if it names one) bound."""
    function = resolve(spec)
    if conn_id is None:
        return function
    connection = step_connection(conn_id, destination=destination, spec=spec)
    return lambda frame: function(frame, connection)


def apply(function: FrameFunction, frame: pd.DataFrame, *, destination: str, spec: str) -> pd.DataFrame:
    """``function(frame)``, checked to keep the file's columns in their order, each of them text.

    Returns the frame with every column as ``pd.ArrowDtype(pa.string())`` (missing values null),
    ready for ``transform.encode_rows``; raises ``TransformError`` (one line) otherwise.
    """
    import pandas as pd

    from subscription_exports.transform import describe_dtype, text_array

    where = f"transform {spec!r} of destination {destination!r}"
    try:
        result = function(frame)
    except TransformError as exc:  # the step's own "my settings are wrong"
        raise TransformError(f"{where}: {' '.join(str(exc).split())}") from None
    if not isinstance(result, pd.DataFrame):
        raise TransformError(f"{where} returned a {type(result).__name__}, not a pandas DataFrame")
    got, want = [str(c) for c in result.columns], [str(c) for c in frame.columns]
    if got != want:
        missing = [c for c in want if c not in got]
        extra = [c for c in got if c not in want]
        detail = f"missing {missing}, unexpected {extra}" if missing or extra else "same columns in another order"
        raise TransformError(f"{where} must return the same columns in the same order: {detail}")
    columns = {}
    for name, values in zip(want, (result.iloc[:, i] for i in range(len(want))), strict=True):
        arrow = text_array(values)
        if arrow is None:
            raise TransformError(
                f"{where} returned column {name!r} as {describe_dtype(values)}, not text: {NOT_TEXT_HINT}"
            )
        columns[name] = pd.arrays.ArrowExtensionArray(arrow)
    return pd.DataFrame(columns, copy=False)

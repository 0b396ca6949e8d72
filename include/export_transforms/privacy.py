"""Pseudonymise device identifiers before they leave: destination transforms.

``hmac_device_ids`` (use this one): ``ip_address``, ``idfa``, ``idfv``, ``advertising_id``,
``android_id`` and ``android_app_set_id`` become the hex HMAC-SHA-256 of their text under a key
read, when the export runs, from the password of the Airflow connection the destination names::

    transform: "export_transforms.privacy:hmac_device_ids"
    transform_conn_id: acme_pseudonym_key

The key stays in the connection (or your secrets backend): never in the destinations file, the
code, the logs, XCom or the manifest. The same key gives the same pseudonym for the same value,
so joins across days and tables keep working; without the key a pseudonym cannot be reversed by
trying every possible value. Empty values stay empty.

``hash_device_ids``: plain SHA-256 of ``ip_address`` and ``idfa``. Plain SHA-256 of an IPv4
address can be reversed by trying all 2**32 addresses: it hides nothing from someone who wants
the address back. Kept for files already delivered that way; prefer ``hmac_device_ids``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from subscription_exports.custom_transform import TransformError

if TYPE_CHECKING:
    import pandas as pd

HASHED_COLUMNS = ("ip_address", "idfa")
# Every device or network identifier of the table shapes (events and ua_events hold all six).
KEYED_COLUMNS = ("ip_address", "idfa", "idfv", "advertising_id", "android_id", "android_app_set_id")
MIN_KEY_CHARACTERS = 16  # e.g. `python -c "import secrets; print(secrets.token_hex(32))"` gives 64


def replace_each(values: pd.Series, function: Callable[[str], str]) -> pd.Series:
    """``values`` with every present value replaced by ``function(value)``: missing values stay
    missing, and the column keeps its text dtype, also where no value is present (``Series.map``
    alone returns ``null[pyarrow]`` for a column missing in every row, as an iOS app's Android
    identifiers are: a step after this one still sees text)."""
    return values.map(function, na_action="ignore").astype(values.dtype, copy=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else text


def hash_device_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """The chunk with ``ip_address`` and ``idfa`` hashed (tables without them pass unchanged)."""
    hashed = {name: replace_each(frame[name], sha256_hex) for name in HASHED_COLUMNS if name in frame}
    return frame.assign(**hashed)


def hmac_key(connection: Any) -> bytes:
    """The key: the connection's password as UTF-8. Never put into a message."""
    password = connection.password or ""
    if len(password) < MIN_KEY_CHARACTERS:
        raise TransformError(
            f"connection {connection.conn_id!r} must hold the HMAC key in its password, at least "
            f"{MIN_KEY_CHARACTERS} random characters (e.g. secrets.token_hex(32))"
        )
    return password.encode("utf-8")


def hmac_device_ids(frame: pd.DataFrame, connection: Any) -> pd.DataFrame:
    """The chunk with the device identifiers replaced by their hex HMAC-SHA-256 under the connection's key."""
    key = hmac_key(connection)

    def pseudonym(text: str) -> str:
        return hmac.digest(key, text.encode("utf-8"), "sha256").hex() if text else text

    keyed = {name: replace_each(frame[name], pseudonym) for name in KEYED_COLUMNS if name in frame}
    return frame.assign(**keyed)

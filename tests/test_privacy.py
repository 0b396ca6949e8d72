"""The shipped pseudonymisation steps (include/export_transforms/privacy.py) on chunks shaped like the tables."""

from __future__ import annotations

import hashlib
import hmac
import sys
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pytest

from subscription_exports.custom_transform import TransformError, apply, resolve
from subscription_exports.tables import EVENTS, PAYWALL_VISITS, UA_EVENTS, TableSpec
from subscription_exports.transform import TEXT, encode_rows

KEY = "k" * 8 + "0123456789abcdef"
# Loaded the way the exporter loads a destination's step (include/ is put on the path).
privacy = sys.modules[resolve("export_transforms.privacy:hmac_device_ids").__module__]
IDS = ("ip_address", "idfa", "idfv", "advertising_id", "android_id", "android_app_set_id")


def chunk(spec: TableSpec) -> pd.DataFrame:
    """Three rows: a value in every column, an empty string, a missing value."""
    names = spec.header(with_attributes=False)
    return pd.DataFrame({n: pd.array([f"{n}-1", "", None], dtype=TEXT) for n in names})


def connection(password: str | None) -> SimpleNamespace:
    # The two attributes the step reads of an Airflow Connection.
    return SimpleNamespace(conn_id="pseudonym_key", password=password)


@pytest.mark.parametrize("spec", [EVENTS, UA_EVENTS, PAYWALL_VISITS], ids=lambda s: s.name)
def test_hmac_replaces_every_device_identifier_and_nothing_else(spec: TableSpec) -> None:
    frame = chunk(spec)
    step = lambda f: privacy.hmac_device_ids(f, connection(KEY))  # noqa: E731
    out = apply(step, frame, destination="d", spec="export_transforms.privacy:hmac_device_ids")
    keyed = [n for n in frame.columns if n in IDS]
    assert set(keyed) == ({"ip_address", "idfa"} | set(IDS) if spec is not PAYWALL_VISITS else set())
    for name in frame.columns:
        values = out[name].tolist()
        if name in keyed:
            digest = hmac.new(KEY.encode(), f"{name}-1".encode(), hashlib.sha256).hexdigest()
            assert values[0] == digest
        else:
            assert values[0] == f"{name}-1"
        assert values[1] == "" and pd.isna(values[2])  # empty stays empty, missing stays missing
    line = encode_rows(out).split(b"\r\n")[2]
    assert line == b"," * (len(frame.columns) - 1)


@pytest.mark.parametrize("password", [None, "", "short-key"])
def test_a_missing_or_short_key_is_one_line_without_the_key(password: str | None) -> None:
    frame = chunk(EVENTS)
    step = lambda f: privacy.hmac_device_ids(f, connection(password))  # noqa: E731
    with pytest.raises(TransformError) as refused:
        apply(step, frame, destination="acme", spec="export_transforms.privacy:hmac_device_ids")
    message = str(refused.value)
    assert message == (
        "transform 'export_transforms.privacy:hmac_device_ids' of destination 'acme': connection 'pseudonym_key' "
        "must hold the HMAC key in its password, at least 16 random characters (e.g. secrets.token_hex(32))"
    )
    assert not password or password not in message


def test_another_key_gives_other_pseudonyms() -> None:
    frame = chunk(UA_EVENTS)
    one = privacy.hmac_device_ids(frame, connection(KEY))
    two = privacy.hmac_device_ids(frame, connection(KEY + "x"))
    assert (one["idfa"][0] != two["idfa"][0]) and one["idfa"][0] == privacy.hmac_device_ids(frame, connection(KEY))[
        "idfa"
    ][0]


TEXT_DTYPES = {
    "string[pyarrow]": TEXT,
    "large_string[pyarrow]": pd.ArrowDtype(pa.large_string()),
    "string": pd.StringDtype(),
    "str": pd.StringDtype(na_value=float("nan")),
    "object": object,
}
STEPS = {
    "hmac_device_ids": (lambda f: privacy.hmac_device_ids(f, connection(KEY)), IDS,
                        lambda v: hmac.new(KEY.encode(), v.encode(), hashlib.sha256).hexdigest()),
    "hash_device_ids": (privacy.hash_device_ids, ("ip_address", "idfa"),
                        lambda v: hashlib.sha256(v.encode()).hexdigest()),
}  # fmt: skip


@pytest.mark.parametrize("dtype", sorted(TEXT_DTYPES))
@pytest.mark.parametrize("step_name", sorted(STEPS))
@pytest.mark.parametrize(
    ("app", "rows"),
    [
        # an iOS app: idfv and the address, no Android identifier and no idfa (tracking not allowed)
        ("ios", [{"idfv": "V-1", "ip_address": "10.0.0.1"}, {"idfv": "V-2", "ip_address": ""}]),
        # an Android app: no idfa, no idfv
        ("android", [{"advertising_id": "A-1", "android_id": "a1", "android_app_set_id": "s1", "ip_address": "::1"}]),
        ("no rows", []),
    ],
)
def test_the_shipped_steps_on_a_single_platform_chunk_keep_every_column_text(app, rows, step_name, dtype) -> None:
    # The chunk of a single-platform app: the other platform's identifiers missing in every row.
    step, keyed, digest = STEPS[step_name]
    names = EVENTS.header(with_attributes=False)
    frame = pd.DataFrame(
        {n: pd.Series([r.get(n, "x" if n not in IDS else None) for r in rows], dtype=TEXT_DTYPES[dtype]) for n in names}
    )
    out = step(frame)
    for name in keyed:  # the shipped step keeps each column's dtype, missing values missing
        assert out[name].dtype == frame[name].dtype, (name, out[name].dtype)
        want = [digest(v) if isinstance(v, str) and v else v for v in (r.get(name) for r in rows)]
        assert [None if pd.isna(v) else v for v in out[name].tolist()] == want
    encoded = encode_rows(
        apply(step, frame, destination="acme-ios-private", spec=f"export_transforms.privacy:{step_name}")
    )
    lines = encoded.split(b"\r\n")[:-1]
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        cells = line.decode().split(",")
        for name in IDS:
            value = row.get(name)
            expect = (digest(value) if name in keyed else value) if value else ""
            assert cells[names.index(name)] == expect, name

"""Destination configuration: schema, defaults, derived fields and one-line errors (no I/O but tmp files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from subscription_exports.config import (
    DEFAULT_KEY_TEMPLATE,
    DEFAULT_RANGE_KEY_TEMPLATE,
    INCLUDE_DIR,
    ConfigError,
    Destination,
    load_destinations,
    load_document,
    parse_destinations,
    selected_event_types,
    validate_destination,
)
from subscription_exports.integrations import (
    CUSTOM_S3_UA_EXPORT,
    INTEGRATIONS,
    S3_EXPORT,
    SUBSCRIPTION_EVENT_GROUPS,
    UA_EVENT_GROUPS,
    Integration,
)

ORIGIN = "test-config"
NAME = "acme-ios"
TRIALS = list(SUBSCRIPTION_EVENT_GROUPS["trials"])
SUBSCRIPTIONS = list(SUBSCRIPTION_EVENT_GROUPS["subscriptions"])
ISSUES = list(SUBSCRIPTION_EVENT_GROUPS["issues"])


def raw(**fields: Any) -> dict[str, Any]:
    """A minimal valid destination, with ``fields`` overriding or adding keys."""
    base: dict[str, Any] = {
        "name": NAME,
        "conn_id": "exports_s3",
        "bucket": "adapty-events/com.sample-app",
        "folder": "subscriptions",
        "app_id": "com.sample-app",
    }
    base.update(fields)
    return base


def valid(integration: Integration = S3_EXPORT, **fields: Any) -> Destination:
    return validate_destination(raw(**fields), integration, origin=ORIGIN)


def config_error(integration: Integration = S3_EXPORT, **fields: Any) -> str:
    with pytest.raises(ConfigError) as info:
        valid(integration, **fields)
    return str(info.value)


def assert_one_line(message: str, *fragments: str) -> None:
    assert "\n" not in message and "\r" not in message, f"error is not one line: {message!r}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def assert_names_field(message: str, field: str, name: str = NAME) -> None:
    assert_one_line(message, ORIGIN, f"destination '{name}'", f"field '{field}'")


# -- valid destinations ------------------------------------------------------------------------


def test_valid_destination_round_trips() -> None:
    dest = valid(
        tables=["events"],
        event_types=["trials", "subscription_refunded"],
        rename_event_types={"trial_started": "trial"},
        exclude_historical_events=False,
        include_events_without_profile=True,
        send_user_attributes=True,
        gzip=True,
        key_template="{app_id}/{table}/{date}.{ext}",
        server_side_encryption={"type": "aws:kms", "kms_key_id": "alias/exports"},
    )
    dumped = dest.model_dump(mode="json")
    assert dumped["tables"] == ["events"]
    assert dumped["server_side_encryption"] == {"type": "aws:kms", "kms_key_id": "alias/exports"}
    # What load_destinations hands to the mapped tasks (JSON through XCom) validates back to the same object.
    again = validate_destination(json.loads(json.dumps(dumped)), S3_EXPORT, origin=ORIGIN)
    assert again == dest
    assert again.model_dump(mode="json") == dumped


def test_defaults() -> None:
    dest = valid()
    assert dest.tables == ("events", "paywall_visits")
    assert dest.event_types == ("all",)
    assert selected_event_types(dest, S3_EXPORT) == list(S3_EXPORT.all_event_types)
    assert dest.rename_event_types == {}
    assert dest.exclude_historical_events is True
    assert dest.include_events_without_profile is False
    assert dest.send_user_attributes is False
    assert dest.gzip is False
    assert dest.key_template == DEFAULT_KEY_TEMPLATE
    assert dest.range_key_template == DEFAULT_RANGE_KEY_TEMPLATE
    assert dest.server_side_encryption is None


def test_default_tables_are_the_integrations_tables() -> None:
    dest = valid(CUSTOM_S3_UA_EXPORT, bucket="adapty-ua")
    assert dest.tables == ("ua_events", "campaign_performance")


def test_tables_may_be_a_subset() -> None:
    assert valid(tables=["paywall_visits"]).tables == ("paywall_visits",)


@pytest.mark.parametrize(
    ("bucket", "folder", "bucket_name", "prefix"),
    [
        ("adapty-events/com.sample-app", "", "adapty-events", "com.sample-app"),
        ("adapty-events/com.sample-app", "exports/daily", "adapty-events", "com.sample-app/exports/daily"),
        ("adapty-events/com.sample-app/", "", "adapty-events", "com.sample-app"),
        ("adapty-events/a/b", "c", "adapty-events", "a/b/c"),
        ("adapty-events", "", "adapty-events", ""),
        ("adapty-events", "exports/", "adapty-events", "exports"),
        ("my.bucket-1", "f", "my.bucket-1", "f"),
    ],
)
def test_nested_bucket_field(bucket: str, folder: str, bucket_name: str, prefix: str) -> None:
    dest = valid(bucket=bucket, folder=folder)
    assert dest.bucket_name == bucket_name
    assert dest.prefix == prefix


# -- event selection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_types", "expected"),
    [
        (["all"], TRIALS + SUBSCRIPTIONS + ISSUES),
        (["trials"], TRIALS),
        (["issues"], ISSUES),
        (["trials", "issues"], TRIALS + ISSUES),
        (["subscription_refunded"], ["subscription_refunded"]),
        (["trial_started", "subscription_renewed"], ["trial_started", "subscription_renewed"]),
        (["issues", "trial_expired"], [*ISSUES, "trial_expired"]),
        # A type already in a chosen group is not listed twice; the order stays the first one seen.
        (["trial_expired", "trials"], ["trial_expired"] + [t for t in TRIALS if t != "trial_expired"]),
        (["trials", "all"], TRIALS + SUBSCRIPTIONS + ISSUES),
    ],
)
def test_selected_event_types(event_types: list[str], expected: list[str]) -> None:
    dest = valid(event_types=event_types)
    assert selected_event_types(dest, S3_EXPORT) == expected


def test_selected_event_types_ua_groups() -> None:
    dest = valid(CUSTOM_S3_UA_EXPORT, bucket="adapty-ua", event_types=["attribution", "trial_started"])
    assert selected_event_types(dest, CUSTOM_S3_UA_EXPORT) == [*UA_EVENT_GROUPS["attribution"], "trial_started"]
    everything = valid(CUSTOM_S3_UA_EXPORT, bucket="adapty-ua")
    assert selected_event_types(everything, CUSTOM_S3_UA_EXPORT) == list(CUSTOM_S3_UA_EXPORT.all_event_types)
    assert "install" in CUSTOM_S3_UA_EXPORT.all_event_types


def test_spec_event_groups() -> None:
    # SPEC section 6, verbatim.
    assert set(SUBSCRIPTION_EVENT_GROUPS) == {"trials", "subscriptions", "issues"}
    assert len(S3_EXPORT.all_event_types) == 5 + 8 + 4


def test_rename_event_types_accepted() -> None:
    dest = valid(rename_event_types={"trial_started": "trial", "subscription_renewed": "renewal"})
    assert dest.rename_event_types == {"trial_started": "trial", "subscription_renewed": "renewal"}


# -- one-line errors naming the destination and the field ------------------------------------


def test_unknown_event_type() -> None:
    msg = config_error(event_types=["trials", "trial_strated"])
    assert_names_field(msg, "event_types")
    assert "'trial_strated'" in msg


def test_unknown_event_group() -> None:
    msg = config_error(event_types=["refunds"])
    assert_names_field(msg, "event_types")
    assert "'refunds'" in msg


def test_ua_group_is_unknown_to_s3_export() -> None:
    msg = config_error(event_types=["attribution"])
    assert_names_field(msg, "event_types")


def test_unknown_table() -> None:
    msg = config_error(tables=["events", "ua_events"])
    assert_names_field(msg, "tables")
    assert "'ua_events'" in msg


def test_empty_tables_list() -> None:
    assert_names_field(config_error(tables=[]), "tables")


def test_table_listed_twice() -> None:
    assert_names_field(config_error(tables=["events", "events"]), "tables")


@pytest.mark.parametrize(
    "bucket",
    [
        "Adapty-Events",  # upper case
        "adapty_events",  # underscore
        "ab",  # too short
        "a" * 64,  # too long
        "192.168.1.10",  # IP-like
        "-adapty",  # must start with a letter or digit
        "adapty-",  # must end with a letter or digit
        "adapty..events",
        "",
        "ADAPTY/com.sample-app",
    ],
)
def test_invalid_bucket_name(bucket: str) -> None:
    assert_names_field(config_error(bucket=bucket), "bucket")


@pytest.mark.parametrize("bucket", ["adapty-events/../x", "adapty-events/a//b", "adapty-events/./x"])
def test_invalid_nested_directory(bucket: str) -> None:
    assert_names_field(config_error(bucket=bucket), "bucket")


@pytest.mark.parametrize("folder", ["..", "a/../b", "../up", "/absolute", "/", "a//b", "a\\b", "./x", "line\nbreak"])
def test_invalid_folder(folder: str) -> None:
    assert_names_field(config_error(folder=folder), "folder")


def test_folder_with_dots_inside_a_segment_is_fine() -> None:
    assert valid(folder="v1..2/x.y").prefix == "com.sample-app/v1..2/x.y"


@pytest.mark.parametrize(
    ("template", "hint"),
    [
        ("{table}/{date}/{bucket}.{ext}", "bucket"),  # unknown placeholder
        ("{table}/{day}.csv", "day"),  # unknown placeholder
        ("{table}/latest.{ext}", "{date}"),  # missing {date}
        ("{table}/{date", "malformed"),  # malformed braces
        ("{table}/{date}}", "malformed"),
        ("{table}/{}/{date}", "unknown"),  # positional placeholder
        ("{table}/../{date}.csv", ".."),  # the key escapes its prefix
        ("/{table}/{date}.csv", "'/'"),  # leading slash
        ("{table}//{date}.csv", "empty"),  # empty segment
    ],
)
def test_bad_key_template(template: str, hint: str) -> None:
    msg = config_error(key_template=template)
    assert_names_field(msg, "key_template")
    assert hint in msg


def test_key_template_with_every_placeholder() -> None:
    template = "{destination}/{app_id}/{table}/{date_from}/{date_to}/{date}.{ext}"
    assert valid(key_template=template).key_template == template


@pytest.mark.parametrize(
    ("template", "hint"),
    [
        ("{table}/{date_to}.{ext}", "{date_from}"),
        ("{table}/{date_from}.{ext}", "{date_to}"),
        ("{table}/{date}.{ext}", "{date_from}"),
        ("{table}/{date_from}/{date_to}/{oops}", "oops"),
    ],
)
def test_bad_range_key_template(template: str, hint: str) -> None:
    msg = config_error(range_key_template=template)
    assert_names_field(msg, "range_key_template")
    assert hint in msg


def test_rename_of_unknown_type() -> None:
    msg = config_error(rename_event_types={"trial_begun": "trial"})
    assert_names_field(msg, "rename_event_types")
    assert "'trial_begun'" in msg


@pytest.mark.parametrize("target", ["", "two\nlines"])
def test_rename_target_must_be_one_non_empty_line(target: str) -> None:
    assert_names_field(config_error(rename_event_types={"trial_started": target}), "rename_event_types.trial_started")


@pytest.mark.parametrize("typo", ["gzipp", "tabels", "send_user_attribute"])
def test_unknown_extra_field(typo: str) -> None:
    assert_names_field(config_error(**{typo: True}), typo)


@pytest.mark.parametrize("missing", ["conn_id", "bucket", "app_id"])
def test_missing_required_field(missing: str) -> None:
    fields = raw()
    del fields[missing]
    with pytest.raises(ConfigError) as info:
        validate_destination(fields, S3_EXPORT, origin=ORIGIN)
    assert_names_field(str(info.value), missing)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("gzip", "maybe", "gzip"),
        ("tables", "events", "tables"),
        ("app_id", "  ", "app_id"),
        ("conn_id", "exports s3", "conn_id"),
        ("name", "acme ios", "name"),
        ("server_side_encryption", {"type": "des"}, "server_side_encryption.type"),
    ],
)
def test_wrong_values(field: str, value: Any, named: str) -> None:
    msg = config_error(**{field: value})
    name = value if field == "name" else NAME
    assert_names_field(msg, named, name=name)


def test_kms_key_id_needs_aws_kms() -> None:
    msg = config_error(server_side_encryption={"type": "AES256", "kms_key_id": "alias/exports"})
    assert_names_field(msg, "server_side_encryption")
    assert "aws:kms" in msg
    assert valid(server_side_encryption={"type": "AES256"}).server_side_encryption.type == "AES256"


def test_destination_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError) as info:
        validate_destination(["not", "a", "mapping"], S3_EXPORT, origin=ORIGIN)  # type: ignore[arg-type]
    assert_one_line(str(info.value), ORIGIN, "mapping")


def test_error_is_one_line_even_when_the_name_has_a_newline() -> None:
    with pytest.raises(ConfigError) as info:
        validate_destination(raw(name="acme\nios"), S3_EXPORT, origin=ORIGIN)
    assert_one_line(str(info.value), ORIGIN, "field 'name'")


# -- whole documents ---------------------------------------------------------------------------


def document(*destinations: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"source_conn_id": "subscription_source", "destinations": list(destinations), **top}


def test_parse_destinations() -> None:
    conn, dests = parse_destinations(
        document(raw(), raw(name="acme-android", app_id="com.acme.android")), S3_EXPORT, origin=ORIGIN
    )
    assert conn == "subscription_source"
    assert [d.name for d in dests] == [NAME, "acme-android"]


def test_source_conn_id_default() -> None:
    conn, _ = parse_destinations({"destinations": [raw()]}, S3_EXPORT, origin=ORIGIN)
    assert conn == "subscription_source"


def test_duplicate_destination_names() -> None:
    with pytest.raises(ConfigError) as info:
        parse_destinations(document(raw(), raw(app_id="other")), S3_EXPORT, origin=ORIGIN)
    assert_one_line(str(info.value), ORIGIN, "field 'destinations'", f"'{NAME}'", "twice")


def test_empty_destinations_list() -> None:
    with pytest.raises(ConfigError) as info:
        parse_destinations(document(), S3_EXPORT, origin=ORIGIN)
    assert_one_line(str(info.value), ORIGIN, "field 'destinations'")


@pytest.mark.parametrize("doc", [None, [], "destinations", {"source_conn_id": "x"}, {"destinations": "x"}])
def test_document_shape(doc: Any) -> None:
    with pytest.raises(ConfigError) as info:
        parse_destinations(doc, S3_EXPORT, origin=ORIGIN)
    assert_one_line(str(info.value), ORIGIN)


def test_unknown_top_level_field() -> None:
    with pytest.raises(ConfigError) as info:
        parse_destinations(document(raw(), destinatons=[]), S3_EXPORT, origin=ORIGIN)
    assert_one_line(str(info.value), ORIGIN, "field 'destinatons'")


def test_bad_destination_inside_a_document_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        parse_destinations(document(raw(), raw(name="acme-android", bucket="Adapty")), S3_EXPORT, origin=ORIGIN)
    assert_names_field(str(info.value), "bucket", name="acme-android")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("destinations: [\n", 2),
        ("destinations:\n  - name: a\n   conn_id: b\n", 3),
        ('{"destinations": [}', 1),
        ("destinations:\n\t- name: a\n", 2),
    ],
)
def test_yaml_syntax_error(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        load_document(text, "Airflow Variable 's3_export_destinations'")
    msg = str(info.value)
    assert_one_line(msg, "Airflow Variable 's3_export_destinations'", "not valid YAML/JSON", f"line {line}")


# -- load_destinations: shipped files and the Variable override --------------------------------


@pytest.mark.parametrize("dag_id", sorted(INTEGRATIONS))
def test_shipped_destination_files_validate(dag_id: str) -> None:
    integration = INTEGRATIONS[dag_id]
    assert (INCLUDE_DIR / integration.config_file).is_file()
    conn, dests = load_destinations(integration, variable_text=None)
    assert conn == "subscription_source"
    assert dests, "a shipped destinations file lists at least one destination"
    for dest in dests:
        assert set(dest.tables) <= set(integration.table_names)
        assert selected_event_types(dest, integration)


def test_shipped_s3_export_file_content() -> None:
    _, dests = load_destinations(S3_EXPORT, variable_text=None)
    by_name = {d.name: d for d in dests}
    android = by_name["acme-android"]
    assert android.bucket_name == "adapty-events"
    assert android.prefix == "com.acme.android/subscriptions"
    assert selected_event_types(android, S3_EXPORT) == TRIALS + SUBSCRIPTIONS
    assert android.rename_event_types == {"trial_started": "trial"}


def override_document() -> dict[str, Any]:
    return document(raw(name="from-variable", bucket="exports/override", folder=""), source_conn_id="other_source")


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_variable_overrides_the_file(fmt: str) -> None:
    doc = override_document()
    text = json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc)
    conn, dests = load_destinations(S3_EXPORT, variable_text=text)
    assert conn == "other_source"
    assert [d.name for d in dests] == ["from-variable"]
    assert dests[0].bucket_name == "exports"
    assert dests[0].prefix == "override"


def test_empty_variable_falls_back_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "destinations").mkdir()
    (tmp_path / "destinations" / "s3_export.yaml").write_text(yaml.safe_dump(document(raw())), encoding="utf-8")
    for text in (None, ""):
        _, dests = load_destinations(S3_EXPORT, variable_text=text, include_dir=tmp_path)
        assert [d.name for d in dests] == [NAME]


def test_bad_variable_names_the_variable() -> None:
    bad = document(raw(gzipp=True))
    with pytest.raises(ConfigError) as info:
        load_destinations(S3_EXPORT, variable_text=json.dumps(bad))
    assert_one_line(str(info.value), "Airflow Variable 's3_export_destinations'", f"'{NAME}'", "field 'gzipp'")


def test_variable_syntax_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_destinations(CUSTOM_S3_UA_EXPORT, variable_text='{"destinations": [')
    assert_one_line(str(info.value), "Airflow Variable 'custom_s3_ua_export_destinations'", "line 1")


def test_bad_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "destinations").mkdir()
    path = tmp_path / "destinations" / "s3_export.yaml"
    path.write_text("destinations:\n  - name: x\n    bucket: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_destinations(S3_EXPORT, variable_text=None, include_dir=tmp_path)
    assert_one_line(str(info.value), "s3_export.yaml", "line")


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_destinations(S3_EXPORT, variable_text=None, include_dir=tmp_path)
    assert_one_line(str(info.value), "s3_export.yaml", "not found", "s3_export_destinations")

"""Destinations: validated configuration, never code.

A destination file lives at ``include/destinations/<dag_id>.yaml``; an Airflow
Variable ``<dag_id>_destinations`` (JSON or YAML, same schema) overrides it at
run time. Every problem is reported as one line naming the destination and the
field, so a typo in a customer's settings is found before anything is written.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from subscription_exports import INCLUDE_DIR, custom_transform
from subscription_exports.integrations import Integration

DEFAULT_KEY_TEMPLATE = "{table}/dt={date}/{table}_{date}.{ext}"
DEFAULT_RANGE_KEY_TEMPLATE = "{table}/manual/{date_from}_{date_to}/{table}_{date_from}_{date_to}.{ext}"
KEY_FIELDS = {"table", "date", "date_from", "date_to", "app_id", "destination", "ext"}

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_CONN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")


class ConfigError(ValueError):
    """A destination configuration problem, phrased as one line for the user."""


def _check_path_part(value: str, what: str) -> str:
    if value.startswith("/"):
        raise ValueError(f"{what} must not start with '/'")
    parts = value.split("/")
    if any(p in {"..", "."} for p in parts):
        raise ValueError(f"{what} must not contain '.' or '..' segments")
    if any(p == "" for p in parts[:-1]) or "\\" in value:
        raise ValueError(f"{what} must not contain empty segments or backslashes")
    if any(ord(ch) < 32 for ch in value):
        raise ValueError(f"{what} must not contain control characters")
    return value.rstrip("/")


def _check_key_template(template: str, required: set[str]) -> str:
    try:
        parsed = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"malformed template: {exc}") from None
    fields = {name for name, _, _ in parsed}
    for name, spec, conv in parsed:
        # '{table!r}' would put quotes into keys and '{date:%Y}' cannot apply to text: plain names only.
        if spec or conv:
            raise ValueError(
                f"placeholder {{{name}{'!' + conv if conv else ''}{':' + spec if spec else ''}}} "
                f"takes no conversion or format spec; write {{{name}}}"
            )
    unknown = fields - KEY_FIELDS
    if unknown:
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(KEY_FIELDS)}")
    missing = required - fields
    if missing:
        raise ValueError(f"must contain {sorted('{' + m + '}' for m in missing)} so every export gets its own key")
    sample = template.format(
        table="t",
        date="2026-01-01",
        date_from="2026-01-01",
        date_to="2026-01-02",
        app_id="a",
        destination="d",
        ext="csv",
    )
    _check_path_part(sample, "the key")
    return template


class ServerSideEncryption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["AES256", "aws:kms"]
    kms_key_id: str | None = None

    @model_validator(mode="after")
    def _kms_only(self) -> ServerSideEncryption:
        if self.kms_key_id and self.type != "aws:kms":
            raise ValueError("kms_key_id is only valid with type 'aws:kms'")
        return self


class Destination(BaseModel):
    """One customer/app destination of an integration type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    conn_id: str
    bucket: str
    folder: str = ""
    app_id: str
    tables: tuple[str, ...]
    event_types: tuple[str, ...] = ("all",)
    rename_event_types: dict[str, str] = Field(default_factory=dict)
    exclude_historical_events: bool = True
    include_events_without_profile: bool = False
    send_user_attributes: bool = False
    # The file's format: CSV (the seeds', default) or typed Parquet (docs/table-shapes.md: each column's
    # type); CSV may be gzipped, Parquet compresses its pages (zstd unless ``compression`` says otherwise).
    format: Literal["csv", "parquet"] = "csv"
    compression: Literal["zstd", "snappy", "gzip", "none"] | None = None
    gzip: bool = False
    key_template: str = DEFAULT_KEY_TEMPLATE
    range_key_template: str = DEFAULT_RANGE_KEY_TEMPLATE
    server_side_encryption: ServerSideEncryption | None = None
    transform: str | None = None  # "module:function", a pandas step per chunk (custom_transform.py)
    # The Airflow connection a step reads its settings from (e.g. an HMAC key in its password).
    transform_conn_id: str | None = Field(default=None, validate_default=True)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("use letters, digits, '.', '_' or '-' (max 100), starting with a letter or digit")
        return v

    @field_validator("conn_id")
    @classmethod
    def _conn_id(cls, v: str) -> str:
        if not _CONN_ID_RE.match(v):
            raise ValueError("not a valid Airflow connection id")
        return v

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        bucket, _, prefix = v.partition("/")
        if not _BUCKET_RE.match(bucket) or ".." in bucket or re.match(r"^\d+\.\d+\.\d+\.\d+$", bucket):
            raise ValueError(
                f"invalid S3 bucket name {bucket!r}: 3-63 lower-case letters, digits, '.' or '-', "
                "starting and ending with a letter or digit"
            )
        if prefix:
            _check_path_part(prefix, "the nested directory")
        return v.rstrip("/")

    @field_validator("folder")
    @classmethod
    def _folder(cls, v: str) -> str:
        return _check_path_part(v, "the folder") if v else v

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("tables")
    @classmethod
    def _tables(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("select at least one table")
        if len(set(v)) != len(v):
            raise ValueError("lists a table twice")
        return v

    @field_validator("compression")
    @classmethod
    def _compression(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("format", "parquet") == "csv":
            raise ValueError("applies to format 'parquet' only (a CSV file is compressed with gzip: true)")
        return v

    @field_validator("gzip")
    @classmethod
    def _gzip(cls, v: bool, info: ValidationInfo) -> bool:
        if v and info.data.get("format") == "parquet":
            raise ValueError("applies to format 'csv' only (a Parquet file compresses its pages: see 'compression')")
        return v

    @field_validator("key_template")
    @classmethod
    def _key_template(cls, v: str) -> str:
        return _check_key_template(v, {"table", "date"})

    @field_validator("range_key_template")
    @classmethod
    def _range_key_template(cls, v: str) -> str:
        return _check_key_template(v, {"table", "date_from", "date_to"})

    @field_validator("transform")
    @classmethod
    def _transform(cls, v: str | None) -> str | None:
        if v is not None:
            custom_transform.takes_connection(custom_transform.resolve(v))  # importable, with a usable signature
        return v

    @field_validator("transform_conn_id")
    @classmethod
    def _transform_conn_id(cls, v: str | None, info: ValidationInfo) -> str | None:
        if "transform" not in info.data:  # the transform itself is invalid: reported on its own
            return v
        spec = info.data["transform"]
        if v is not None and not _CONN_ID_RE.match(v):
            raise ValueError("not a valid Airflow connection id")
        if spec is None:
            if v is not None:
                raise ValueError("names the connection of a transform: set 'transform' too, or remove it")
            return v
        takes = custom_transform.takes_connection(custom_transform.resolve(spec))
        if takes and v is None:
            raise ValueError(f"transform {spec!r} reads its settings from a connection: name it here")
        if takes is False and v is not None:
            raise ValueError(f"transform {spec!r} takes no connection (def step(frame)); remove this field")
        return v

    # -- derived ---------------------------------------------------------------
    @property
    def bucket_name(self) -> str:
        return self.bucket.partition("/")[0]

    @property
    def parquet_compression(self) -> str:
        """The Parquet file's page compression (zstd unless the destination chose another)."""
        return self.compression or "zstd"

    @property
    def extension(self) -> str:
        """The data file's extension, as key templates' ``{ext}`` reads it."""
        if self.format == "parquet":
            return "parquet"
        return "csv.gz" if self.gzip else "csv"

    @property
    def prefix(self) -> str:
        """Key prefix inside the bucket: nested directories of the bucket field, then the folder."""
        nested = self.bucket.partition("/")[2]
        return "/".join(p for p in (nested, self.folder) if p)


class DestinationsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source_conn_id: str = "subscription_source"
    destinations: tuple[dict[str, Any], ...]
    alerts: Any = None  # validated by alerts.py (config check, and each alert): never fails an export


def _one_line(exc: ValidationError, where: str) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: field '{field}': {msg}{more}"


def _where(origin: str, raw: Any) -> str:
    name = str(raw.get("name", "?")) if isinstance(raw, dict) else "?"
    # repr() keeps the message on one line whatever the name holds
    return f"{origin}: destination {name!r}"


def _selection_problems(
    tables: Any, event_types: Any, rename: Any, integration: Integration
) -> Iterator[tuple[str, str]]:
    """(field, problem) of the table and event selection, for values that passed the schema."""
    if isinstance(tables, list | tuple):
        unknown_tables = [t for t in tables if t not in integration.table_names]
        if unknown_tables:
            yield (
                "tables",
                f"unknown table {unknown_tables[0]!r} for {integration.dag_id} "
                f"(choose from {list(integration.table_names)})",
            )
    known = set(integration.all_event_types)
    if isinstance(event_types, list | tuple):
        if not event_types:
            yield "event_types", "select at least one event type or group, or 'all'"
        for item in event_types:
            if item != "all" and item not in integration.event_groups and item not in known:
                yield (
                    "event_types",
                    f"unknown event type or group {item!r} "
                    f"(groups: {sorted(integration.event_groups)}; or single event types, or 'all')",
                )
                break
    if isinstance(rename, dict):
        for source_type, target in rename.items():
            if source_type not in known:
                yield "rename_event_types", f"unknown event type {source_type!r}"
            elif not isinstance(target, str) or not target or any(ord(ch) < 32 for ch in target):
                yield f"rename_event_types.{source_type}", "must be a non-empty single line"


def validate_destination(raw: dict[str, Any], integration: Integration, *, origin: str) -> Destination:
    """Validate one destination against the schema and the integration's tables and event types.

    Raises ConfigError with the first problem, one line naming origin, destination and field."""
    where = _where(origin, raw)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping of fields")
    data = dict(raw)
    data.setdefault("tables", list(integration.table_names))
    try:
        dest = Destination.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, where)) from None
    for field, problem in _selection_problems(dest.tables, dest.event_types, dest.rename_event_types, integration):
        raise ConfigError(f"{where}: field '{field}': {problem}")
    return dest


def destination_problems(raw: Any, integration: Integration, *, origin: str) -> list[str]:
    """Every problem of one destination entry (not only the first), one line each."""
    where = _where(origin, raw)
    if not isinstance(raw, dict):
        return [f"{where}: must be a mapping of fields"]
    data = dict(raw)
    data.setdefault("tables", list(integration.table_names))
    problems = []
    bad_fields: set[str] = set()
    try:
        Destination.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            bad_fields.add(str(err["loc"][0]) if err["loc"] else "")
            problems.append(f"{where}: field '{field}': {err['msg'].removeprefix('Value error, ')}")
    selection = _selection_problems(
        None if "tables" in bad_fields else data.get("tables"),
        None if "event_types" in bad_fields else data.get("event_types", ["all"]),
        None if "rename_event_types" in bad_fields else data.get("rename_event_types"),
        integration,
    )
    problems.extend(f"{where}: field '{field}': {problem}" for field, problem in selection)
    return problems


def selected_event_types(dest: Destination, integration: Integration) -> list[str]:
    """The destination's event-type selection expanded to single types, in a stable order."""
    chosen: dict[str, None] = {}
    for item in dest.event_types:
        if item == "all":
            chosen.update(dict.fromkeys(integration.all_event_types))
        else:
            chosen.update(dict.fromkeys(integration.event_groups.get(item, (item,))))
    return list(chosen)


@dataclass(frozen=True)
class Configuration:
    """A destinations document whose top level is valid: its entries are not validated yet.

    What belongs to no single destination (syntax, top-level fields, names) is checked when it is
    read; each entry is validated on its own (``destination``), so one bad entry fails only itself.
    """

    integration: Integration
    origin: str  # "Airflow Variable '...'" or "destinations file ..."
    source_conn_id: str
    entries: dict[str, dict[str, Any]]  # by destination name, in document order
    alerts: Any = None  # the raw `alerts:` section (alerts.parse_alerts)

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def destination(self, name: str) -> Destination:
        """The validated destination `name`; ConfigError (one line) if it is gone or invalid."""
        if name not in self.entries:
            raise ConfigError(
                f"{self.origin}: destination {name!r} is no longer configured "
                f"(configured: {_short_list(self.names)}); it was when the run started"
            )
        return validate_destination(self.entries[name], self.integration, origin=self.origin)

    def valid_destinations(self) -> tuple[list[Destination], dict[str, str]]:
        """(valid destinations, {name: first problem} of the others)."""
        valid, invalid = [], {}
        for name in self.entries:
            try:
                valid.append(self.destination(name))
            except ConfigError as exc:
                invalid[name] = str(exc)
        return valid, invalid


def _short_list(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown} (+{len(names) - limit} more)" if len(names) > limit else shown


def document_problems(document: Any, *, origin: str) -> list[str]:
    """Problems that belong to no single destination: document shape, top-level fields, names."""
    if not isinstance(document, dict):
        return [f"{origin}: must be a mapping with 'source_conn_id' and 'destinations'"]
    try:
        parsed = DestinationsFile.model_validate(document)
    except ValidationError as exc:
        return [_one_line(exc, origin)]
    if not parsed.destinations:
        return [f"{origin}: field 'destinations': no destinations configured"]
    problems = []
    names: list[str] = []
    for i, entry in enumerate(parsed.destinations):
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(
                f"{origin}: field 'destinations.{i}': destination #{i + 1} has no 'name' "
                "(every destination needs a unique name)"
            )
        else:
            names.append(name)
    for dupe in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{origin}: field 'destinations': destination name {dupe!r} is used twice")
    return problems


def read_configuration(document: Any, integration: Integration, *, origin: str) -> Configuration:
    """The document's entries by name; ConfigError only for what belongs to no single destination."""
    problems = document_problems(document, origin=origin)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)
    parsed = DestinationsFile.model_validate(document)
    entries = {entry["name"]: entry for entry in parsed.destinations}
    return Configuration(integration, origin, parsed.source_conn_id, entries, parsed.alerts)


def parse_destinations(document: Any, integration: Integration, *, origin: str) -> tuple[str, list[Destination]]:
    """Validate a whole destinations document strictly (every entry); returns (source_conn_id, destinations)."""
    configuration = read_configuration(document, integration, origin=origin)
    return configuration.source_conn_id, [configuration.destination(name) for name in configuration.names]


def load_document(text: str, origin: str) -> Any:
    """Parse YAML (a superset of JSON) into Python data, reporting syntax errors on one line."""
    import json

    import yaml

    if text.lstrip().startswith("{"):  # JSON (a Variable, usually): 5-50x faster than the YAML parser
        try:
            return json.loads(text)
        except ValueError:
            pass  # not strict JSON: YAML reports the error (or parses the flow mapping)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{origin}: not valid YAML/JSON{at}: {first}") from None


def file_origin(path: Path, include_dir: Path = INCLUDE_DIR) -> str:
    shown = path.relative_to(include_dir.parent) if path.is_relative_to(include_dir.parent) else path
    return f"destinations file {shown}"


def variable_origin(integration: Integration) -> str:
    return f"Airflow Variable '{integration.variable_key}'"


def load_configuration(
    integration: Integration, *, variable_text: str | None, include_dir: Path = INCLUDE_DIR
) -> Configuration:
    """The configuration from the Variable override when set, else from the shipped file."""
    if variable_text:
        origin = variable_origin(integration)
        return read_configuration(load_document(variable_text, origin), integration, origin=origin)
    path = include_dir / integration.config_file
    origin = file_origin(path, include_dir)
    if not path.exists():
        raise ConfigError(f"{origin}: not found; create it or set the Airflow Variable '{integration.variable_key}'")
    return read_configuration(load_document(path.read_text(encoding="utf-8"), origin), integration, origin=origin)


def load_destinations(
    integration: Integration, *, variable_text: str | None, include_dir: Path = INCLUDE_DIR
) -> tuple[str, list[Destination]]:
    """Every destination, strictly validated (the first problem raises), from the Variable or the file."""
    configuration = load_configuration(integration, variable_text=variable_text, include_dir=include_dir)
    return configuration.source_conn_id, [configuration.destination(name) for name in configuration.names]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def shipped_destinations_doc(integration: Integration, include_dir: Path = INCLUDE_DIR) -> str:
    """Markdown listing the shipped file's destinations, for the DAG's docs in the UI.

    Called at parse time, so it reads only the local file (never a Variable or connection) and never
    raises: a broken file is described, not fatal to the DAG.
    """
    path = include_dir / integration.config_file
    env_name = f"AIRFLOW_VAR_{integration.variable_key.upper()}"
    in_effect = (
        f"**Not in effect here**: `{env_name}` is set in this environment, so runs export the Variable's "
        "destinations, not these."
        if os.environ.get(env_name)  # cheap; a Variable in the metadata DB or a secrets backend is not read here
        else f"In effect unless the Airflow Variable `{integration.variable_key}` is set (Admin → Variables or a "
        "secrets backend; not read when the DAG file is parsed)."
    )
    head = (
        f"#### Destinations in `{path.relative_to(include_dir.parent)}`\n\n"
        f"As shipped with this DAG file (read when the file was parsed). {in_effect} When set, the Variable "
        "replaces this whole list at run time; the `load_destinations` log of a run names the destinations it "
        "exported and their source.\n\n"
    )
    try:
        configuration = load_configuration(integration, variable_text=None, include_dir=include_dir)
    except ConfigError as exc:
        return head + f"**The file has a problem**: {_cell(exc)}\n"
    except OSError as exc:
        return head + f"**The file cannot be read**: {_cell(exc)}\n"
    rows = ["| destination | app_id | bucket/prefix | tables | connection |", "|---|---|---|---|---|"]
    for name in configuration.names:
        try:
            dest = configuration.destination(name)
        except ConfigError as exc:
            rows.append(f"| {_cell(name)} | **invalid**: {_cell(exc)} | | | |")
            continue
        where = "/".join(p for p in (dest.bucket_name, dest.prefix) if p)
        rows.append(
            f"| {_cell(dest.name)} | {_cell(dest.app_id)} | `{_cell(where)}` | {', '.join(dest.tables)} "
            f"| {_cell(dest.conn_id)} |"
        )
    return head + "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m subscription_exports.config check [FILE ...]: the older form
    # By name, not an import of config_check (config_check -> alerts -> config would close a circle).
    import runpy
    import sys

    sys.argv[0] = "python -m subscription_exports"
    sys.argv.insert(1, "config")
    runpy.run_module("subscription_exports", run_name="__main__")

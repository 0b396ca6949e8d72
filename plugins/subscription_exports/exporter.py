"""Export one table of one destination for one window: stream, shape, upload, then the manifest."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from subscription_exports import custom_transform, loading, memory, parsing, source
from subscription_exports.config import Destination, selected_event_types
from subscription_exports.integrations import Integration
from subscription_exports.s3 import AtomicUpload, ObjectSink, error_code
from subscription_exports.tables import TableSpec
from subscription_exports.windows import Window

if TYPE_CHECKING:  # pandas: imported by the task, not at DAG parse time
    from subscription_exports.transform import ShapeOptions

log = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


# Long exports log a progress line every PROGRESS_SECONDS or every PROGRESS_BYTES written, whichever first.
PROGRESS_SECONDS = 30.0
PROGRESS_BYTES = 256 * 1024 * 1024


class ExportError(RuntimeError):
    """An export failed; one line naming destination, connection, bucket, object and the cause."""


@dataclass(frozen=True)
class ExportResult:
    destination: str
    table: str
    window: str
    bucket: str
    key: str
    manifest_key: str
    rows: int
    bytes: int
    sha256: str
    seconds: float
    row_groups: int | None = None  # Parquet only

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"uri": self.uri}


def object_key(dest: Destination, table: str, window: Window) -> str:
    """Deterministic key: scheduled/backfilled days overwrite their own key, ranges get their own."""
    fields = {
        "table": table,
        "date": window.date_from.isoformat(),
        "date_from": window.date_from.isoformat(),
        "date_to": window.date_to.isoformat(),
        "app_id": dest.app_id,
        "destination": dest.name,
        "ext": dest.extension,
    }
    template = dest.key_template if window.kind == "daily" else dest.range_key_template
    relative = template.format(**fields)
    return f"{dest.prefix}/{relative}" if dest.prefix else relative


def upload_args(dest: Destination) -> dict[str, Any]:
    if dest.format == "parquet":
        content_type = PARQUET_CONTENT_TYPE
    else:
        content_type = "application/gzip" if dest.gzip else "text/csv; charset=utf-8"
    args: dict[str, Any] = {"ContentType": content_type}
    sse = dest.server_side_encryption
    if sse:
        args["ServerSideEncryption"] = sse.type
        if sse.kms_key_id:
            args["SSEKMSKeyId"] = sse.kms_key_id
    return args


def sends_attributes(spec: TableSpec, dest: Destination) -> bool:
    """Whether the destination's file of this table has the ``attributes`` column (and the SQL reads it)."""
    return dest.send_user_attributes and spec.supports_attributes


def shape_options(integration: Integration, spec: TableSpec, dest: Destination) -> ShapeOptions:
    from subscription_exports.transform import ShapeOptions

    return ShapeOptions(
        with_attributes=sends_attributes(spec, dest),
        rename_event_types=dest.rename_event_types if spec.name == integration.events_table else {},
    )


def source_query(
    integration: Integration, spec: TableSpec, dest: Destination, window: Window, dialect: str
) -> tuple[str, dict[str, Any]]:
    """The table's SQL and the destination's values bound into it."""
    params = source.QueryParams(
        app_id=dest.app_id,
        window=window,
        event_types=tuple(selected_event_types(dest, integration)),
        exclude_historical=dest.exclude_historical_events,
        include_without_profile=dest.include_events_without_profile,
        with_attributes=sends_attributes(spec, dest),
    ).for_dialect(dialect)
    return source.read_sql(dialect, spec.name), params


@dataclass(frozen=True)
class DryRunResult:
    destination: str
    table: str
    window: str
    bucket: str
    key: str
    manifest_key: str
    rows: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DiscardedUpload:
    """An ``AtomicUpload`` that stores nothing: what a dry run writes its bytes to (counted and hashed
    by the ``ObjectSink`` in front of it, as a real export's)."""

    etag = None

    def write(self, data: Any) -> None:
        pass

    def commit(self, before_visible: Any = None) -> None:
        pass  # nothing becomes visible, so nothing is prepared for it (before_visible is not called)

    def abort(self) -> None:
        pass


def dry_run_table(
    *, integration: Integration, spec: TableSpec, dest: Destination, window: Window, dialect: str, connection: Any
) -> DryRunResult:
    """What `export_table` would write, writing nothing: the window's rows read, shaped, passed through
    the destination's step and encoded exactly as a real export does (so a step that would fail the
    real run fails here with the same line), their bytes counted and hashed instead of uploaded."""
    key = object_key(dest, spec.name, window)
    step = prepare_step(dest)
    sink = ObjectSink(DiscardedUpload(), gzip=dest.gzip)
    written = write_rows(sink, step, integration=integration, spec=spec, dest=dest, window=window,
                         dialect=dialect, connection=connection)  # fmt: skip
    sink.commit()
    return DryRunResult(
        dest.name, spec.name, window.label, dest.bucket_name, key, key + MANIFEST_SUFFIX, written.rows, sink.size,
        sink.sha256.hexdigest(),
    )  # fmt: skip


def prepare_step(dest: Destination) -> custom_transform.FrameFunction | None:
    """The destination's own step, with the connection it reads (at run time), or None.

    Prepared before anything is written: a step that cannot run fails with one line and the bucket
    stays as it was."""
    if not dest.transform:
        return None
    return custom_transform.prepare(dest.transform, destination=dest.name, conn_id=dest.transform_conn_id)


@dataclass(frozen=True)
class Written:
    """What ``write_rows`` put into its sink: the rows, and for Parquet its row groups and schema."""

    rows: int
    row_groups: int | None = None
    schema: Any = None  # pyarrow.Schema of a Parquet file


def write_rows(
    sink: ObjectSink,
    step: custom_transform.FrameFunction | None,
    *,
    integration: Integration,
    spec: TableSpec,
    dest: Destination,
    window: Window,
    dialect: str,
    connection: Any,
) -> Written:
    """Stream the table's rows of the window from the source, shaped (and through the destination's
    ``step``, from ``prepare_step``), into ``sink`` as the file: the CSV header and lines, or the
    Parquet file converted from the same shaped text (``format: parquet``). The same for an export
    and a dry run: only the sink differs."""
    started = time.monotonic()
    loading.load_export_modules()
    memory.bound_process_memory()
    from subscription_exports import transform  # pandas: imported by the task, not at parse time

    options = shape_options(integration, spec, dest)
    sql, params = source_query(integration, spec, dest, window, dialect)
    typed = None  # the Parquet file (format: parquet), written from the same shaped text as the CSV
    if dest.format == "parquet":
        from subscription_exports.parquet import ParquetFile

        typed = ParquetFile(
            sink, spec.output_columns(with_attributes=options.with_attributes),
            compression=dest.parquet_compression, destination=dest.name, table=spec.name,
        )  # fmt: skip
    else:
        sink.write(transform.encode_header(spec.header(with_attributes=options.with_attributes)))
    rows = 0
    next_bytes, next_time = PROGRESS_BYTES, started + PROGRESS_SECONDS
    columns = transform.source_columns(spec)
    try:
        # The parse is closed on any error before the stream is: it stops reading while the source is
        # still open (parsing.RowAlignedReader.stop), not when the process exits.
        with (
            source.stream_csv(dialect, connection, sql, params) as stream,
            contextlib.closing(parsing.open_parsed_chunks(stream, columns)) as chunks,
        ):
            for batch, special in transform.grouped_parsed(chunks):
                encoded: Any = ()
                if step is None:
                    shaped = transform.shape_columns(batch, spec, options)
                    if typed is not None:
                        typed.write(list(shaped.values()))
                    else:
                        quoting = transform.output_quoting(spec, options, special)
                        encoded = transform.encode_shaped(shaped, quoting=quoting)
                    rows += batch.num_rows
                else:
                    frame = transform.shape(batch, spec, options)
                    frame = custom_transform.apply(step, frame, destination=dest.name, spec=dest.transform)
                    if typed is not None:
                        typed.write(transform.text_columns(frame))
                    else:
                        encoded = transform.encode_row_buffers(frame)
                    rows += len(frame)  # a destination's transform may drop rows
                for lines in encoded:
                    sink.write(lines)
                now = time.monotonic()
                if sink.size >= next_bytes or now >= next_time:
                    log.info(
                        "progress destination=%s table=%s window=%s rows=%d bytes=%d seconds=%.1f rows_per_s=%.0f",
                        dest.name, spec.name, window.label, rows, sink.size, now - started,
                        rows / max(now - started, 1e-9),
                    )  # fmt: skip
                    next_bytes, next_time = sink.size + PROGRESS_BYTES, now + PROGRESS_SECONDS
        if typed is None:
            return Written(rows)
        typed.close()
        return Written(rows, typed.row_groups, typed.schema)
    except BaseException:
        if typed is not None:
            typed.abort()
        raise


def export_table(
    *,
    integration: Integration,
    spec: TableSpec,
    dest: Destination,
    window: Window,
    dialect: str,
    connection: Any,
    client: Any,
    run_id: str,
    part_size: int | None = None,
) -> ExportResult:
    started = time.monotonic()
    key = object_key(dest, spec.name, window)
    header = spec.header(with_attributes=sends_attributes(spec, dest))
    step = prepare_step(dest)
    upload_kw: dict[str, Any] = {"part_size": part_size} if part_size else {}
    if dest.format == "parquet":
        # A Parquet file is about a fifth of the CSV's bytes: its parts fill that much slower, and one
        # uploading while the next fills keeps up, for one 5 MiB part buffer less than CSV's two.
        upload_kw["max_in_flight"] = 1
    upload = AtomicUpload(client, bucket=dest.bucket_name, key=key, extra_args=upload_args(dest), **upload_kw)
    sink = ObjectSink(upload, gzip=dest.gzip)
    try:
        written = write_rows(sink, step, integration=integration, spec=spec, dest=dest, window=window,
                             dialect=dialect, connection=connection)  # fmt: skip
        # A manifest of an earlier export of this key must not describe the new bytes: once every
        # byte is stored, remove it just before they become visible (a new one follows). Without a
        # manifest the day reads as incomplete, never as complete with the wrong checksum.
        sink.commit(before_visible=lambda: client.delete_object(Bucket=dest.bucket_name, Key=key + MANIFEST_SUFFIX))
    except BaseException as exc:
        sink.abort()
        if not isinstance(exc, Exception) or isinstance(exc, custom_transform.TransformError):
            raise  # a step's one line (or a value no Parquet column can hold) names the destination: not retried
        raise ExportError(f"{_where(dest, key)}: export failed: {_cause(exc)}") from exc
    result = ExportResult(
        destination=dest.name,
        table=spec.name,
        window=window.label,
        bucket=dest.bucket_name,
        key=key,
        manifest_key=key + MANIFEST_SUFFIX,
        rows=written.rows,
        bytes=sink.size,
        sha256=sink.sha256.hexdigest(),
        seconds=round(time.monotonic() - started, 3),
        row_groups=written.row_groups,
    )
    # The manifest is written after the data, so its presence marks a complete export.
    manifest = build_manifest(
        result, spec=spec, header=header, window=window, dest=dest, run_id=run_id, schema=written.schema
    )
    try:
        client.put_object(
            Bucket=dest.bucket_name,
            Key=result.manifest_key,
            Body=json.dumps(manifest, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
            **{k: v for k, v in upload_args(dest).items() if k != "ContentType"},
        )
        stored = client.head_object(Bucket=dest.bucket_name, Key=key).get("ETag")
    except Exception as exc:
        raise ExportError(f"{_where(dest, key)}: data written, manifest failed: {_cause(exc)}") from exc
    if upload.etag and stored and stored.strip('"') != upload.etag.strip('"'):
        # Another export of the same key completed after ours; its manifest may already have been
        # overwritten by ours, which describes other bytes. Remove ours: no manifest reads as
        # "incomplete" until this export is retried, never as a wrong checksum.
        with contextlib.suppress(Exception):
            client.delete_object(Bucket=dest.bucket_name, Key=result.manifest_key)
        raise ExportError(
            f"{_where(dest, key)}: the object was replaced by a concurrent export of the same key while this "
            "one wrote its manifest; the manifest was removed, retry this export"
        )
    return result


def table_error_line(exc: BaseException, destination: str, table: str) -> str:
    """The one ERROR line of a failed table export (logged by export_tables, quoted by its failure alert).

    An ``ExportError`` names destination, connection, bucket and object already; any other error gets
    the destination and table in front."""
    if isinstance(exc, ExportError):
        return " ".join(str(exc).split())[:1000]
    cause = " ".join(f"{type(exc).__name__}: {exc}".split())[:1000]
    return f"destination '{destination}': table '{table}': {cause}"


def _where(dest: Destination, key: str) -> str:
    return (
        f"destination '{dest.name}' (connection '{dest.conn_id}', bucket '{dest.bucket_name}'): "
        f"s3://{dest.bucket_name}/{key}"
    )


def _cause(exc: BaseException) -> str:
    cause = error_code(exc)
    if "NoSuchUpload" in cause:
        cause += " (the multipart upload was aborted, e.g. by a later export of the same key)"
    return cause


CSV_FORMAT = "csv; RFC 4180; UTF-8; header row; CRLF line endings; NULL as empty field"


def build_manifest(
    result: ExportResult,
    *,
    spec: TableSpec,
    header: list[str],
    window: Window,
    dest: Destination,
    run_id: str,
    schema: Any = None,
) -> dict[str, Any]:
    """The manifest beside the data file; ``schema``: the Parquet file's (``pyarrow.Schema``), for
    ``format: parquet``."""
    manifest = {
        "table": spec.name,
        "schema_version": spec.schema_version,
        "columns": header,
        "window": window.describe(),
        "app_id": dest.app_id,
        "destination": dest.name,
        "object": {"bucket": result.bucket, "key": result.key},
        "rows": result.rows,
        "bytes": result.bytes,
        "sha256": result.sha256,
        "compression": "gzip" if dest.gzip else None,
        "format": CSV_FORMAT,
        "run_id": run_id,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if dest.format == "parquet":
        from subscription_exports.parquet import describe_schema

        manifest |= {
            "format": "parquet",
            "compression": dest.parquet_compression,
            "row_groups": result.row_groups,
            "schema": describe_schema(schema),
        }
    return manifest

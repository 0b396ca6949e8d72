"""Verify an exported object against its manifest: the check a downstream consumer runs.

    python -m subscription_exports.verify --conn-id exports_s3 s3://adapty-events/com.acme.ios/events/dt=2026-03-07/events_2026-03-07.csv

Re-reads the object in a single streamed pass (memory does not grow with its size) and compares
the stored bytes' count and sha256, the number of CSV data rows (after gunzip for ``.csv.gz``) and
the header with ``<key>.manifest.json``. A Parquet object (manifest ``format: parquet``) is streamed
to a temporary file while hashed, then its footer (rows, row groups, schema) is compared with the
manifest and every row group is read (decoded and counted) one at a time. Prints one line,
``OK ...`` with exit code 0 on a match, else ``FAILED ...: <cause>`` with exit code 1 (2 for usage
or connection problems).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import tempfile
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any

from subscription_exports.exporter import MANIFEST_SUFFIX

READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of one verification; ``problems`` is empty when the object matches its manifest."""

    bucket: str
    key: str
    rows: int | None = None
    bytes: int | None = None
    sha256: str | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def line(self) -> str:
        """One line for people and scripts."""
        if self.ok:
            return f"OK {self.uri} rows={self.rows} bytes={self.bytes} sha256={self.sha256}"
        return f"FAILED {self.uri}: {'; '.join(self.problems)}"


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        return str(err.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode") or type(exc).__name__)
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]


def _is_missing(exc: BaseException) -> bool:
    return _code(exc) in {"NoSuchKey", "404", "NotFound"}


class _Reader(io.RawIOBase):
    """The object's body as a raw stream: hashes and counts the stored bytes, then gunzips if asked."""

    def __init__(self, body: Any, *, gzip: bool) -> None:
        self.body = body
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._gunzip = zlib.decompressobj(wbits=31) if gzip else None
        self._out = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._out and not self._eof:
            chunk = self.body.read(READ_CHUNK)
            if chunk:
                self.sha256.update(chunk)
                self.size += len(chunk)
                self._out = self._gunzip.decompress(chunk) if self._gunzip else chunk
                continue
            self._eof = True
            if self._gunzip:
                self._out = self._gunzip.flush()
                if not self._gunzip.eof:
                    raise zlib.error("truncated gzip stream")
                if self._gunzip.unused_data:
                    raise zlib.error("data after the end of the gzip stream")

    def readinto(self, buffer: Any) -> int:
        self._fill()
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def drain(self) -> None:
        """Hash and count the rest of the stored bytes without decoding them."""
        while chunk := self.body.read(READ_CHUNK):
            self.sha256.update(chunk)
            self.size += len(chunk)


def _count_csv(reader: _Reader) -> tuple[list[str] | None, int]:
    """(header, data rows) of the stream, parsed as RFC 4180 CSV in UTF-8 (quoted newlines included)."""
    # JSON columns (attributes, custom_parameters) may exceed the csv module's default 128 KiB per field.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    text = io.TextIOWrapper(io.BufferedReader(reader, READ_CHUNK), encoding="utf-8", errors="strict", newline="")
    records = csv.reader(text, strict=True)
    header = next(records, None)
    rows = sum(1 for _ in records)
    return header, rows


def verify_object(client: Any, bucket: str, key: str) -> VerifyResult:
    """Re-read ``s3://bucket/key`` and compare it with ``<key>.manifest.json``.

    Never raises for a store or content problem: they are returned as ``problems``.
    """
    if key.endswith(MANIFEST_SUFFIX):
        key = key[: -len(MANIFEST_SUFFIX)]
    manifest_key = key + MANIFEST_SUFFIX

    def failed(*problems: str, **seen: Any) -> VerifyResult:
        return VerifyResult(bucket, key, problems=problems, **seen)

    try:
        manifest = json.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    except Exception as exc:
        if _is_missing(exc):
            return failed(f"manifest s3://{bucket}/{manifest_key} is missing (export incomplete or not an export)")
        if isinstance(exc, ValueError):
            return failed(f"manifest s3://{bucket}/{manifest_key} is not valid JSON")
        return failed(f"cannot read manifest s3://{bucket}/{manifest_key}: {_code(exc)}")
    if not isinstance(manifest, dict) or not {"rows", "bytes", "sha256"} <= set(manifest):
        return failed(f"manifest s3://{bucket}/{manifest_key} lacks rows, bytes or sha256")

    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as exc:
        if _is_missing(exc):
            return failed("object is missing but its manifest exists")
        return failed(f"cannot read object: {_code(exc)}")

    if manifest.get("format") == "parquet":
        try:
            return _verify_parquet(bucket, key, body, manifest)
        finally:
            body.close()
    gzipped = manifest.get("compression") == "gzip"
    reader = _Reader(body, gzip=gzipped)
    content_problem: str | None = None
    header: list[str] | None = None
    rows: int | None = None
    try:
        try:
            header, rows = _count_csv(reader)
        except (zlib.error, UnicodeDecodeError, csv.Error) as exc:
            content_problem = f"content is not {'gzip ' if gzipped else ''}UTF-8 CSV ({type(exc).__name__}: {exc})"
        reader.drain()
    except Exception as exc:
        return failed(f"reading the object failed: {_code(exc)}")
    finally:
        body.close()

    sha, size = reader.sha256.hexdigest(), reader.size
    problems = _stored_problems(size, sha, manifest)
    if content_problem:
        problems.append(content_problem)
    else:
        if rows != manifest["rows"]:
            problems.append(f"rows: object has {rows}, manifest says {manifest['rows']}")
        columns = manifest.get("columns")
        if columns is not None and header != columns:
            problems.append(f"columns: header is {header}, manifest says {columns}")
    return VerifyResult(bucket, key, rows=rows, bytes=size, sha256=sha, problems=tuple(problems))


def _stored_problems(size: int, sha: str, manifest: dict[str, Any]) -> list[str]:
    problems = []
    if size != manifest["bytes"]:
        problems.append(f"bytes: object has {size}, manifest says {manifest['bytes']}")
    if sha != manifest["sha256"]:
        problems.append(f"sha256: object has {sha}, manifest says {manifest['sha256']}")
    return problems


def _verify_parquet(bucket: str, key: str, body: Any, manifest: dict[str, Any]) -> VerifyResult:
    """``verify_object`` of a Parquet object: stored bytes, then footer and every row group."""
    import pyarrow.parquet as pq

    reader = _Reader(body, gzip=False)
    with tempfile.TemporaryFile() as copy:
        try:
            while chunk := reader.read(READ_CHUNK):
                copy.write(chunk)
        except Exception as exc:
            return VerifyResult(bucket, key, problems=(f"reading the object failed: {_code(exc)}",))
        sha, size = reader.sha256.hexdigest(), reader.size
        problems = _stored_problems(size, sha, manifest)
        rows: int | None = None
        try:
            copy.seek(0)
            parquet = pq.ParquetFile(copy)
            metadata = parquet.metadata
            schema = [{"name": f.name, "type": str(f.type)} for f in parquet.schema_arrow]
            # Every row group decoded and counted, one at a time: the footer's count alone proves nothing.
            rows = sum(parquet.read_row_group(i).num_rows for i in range(metadata.num_row_groups))
        except Exception as exc:
            problems.append(f"content is not a readable Parquet file ({type(exc).__name__}: {exc})"[:400])
            return VerifyResult(bucket, key, bytes=size, sha256=sha, problems=tuple(problems))
    if rows != metadata.num_rows:
        problems.append(f"rows: row groups hold {rows}, the footer says {metadata.num_rows}")
    if rows != manifest["rows"]:
        problems.append(f"rows: object has {rows}, manifest says {manifest['rows']}")
    if "row_groups" in manifest and metadata.num_row_groups != manifest["row_groups"]:
        problems.append(f"row groups: object has {metadata.num_row_groups}, manifest says {manifest['row_groups']}")
    if "schema" in manifest and schema != manifest["schema"]:
        problems.append(f"schema: object has {schema}, manifest says {manifest['schema']}")
    columns = manifest.get("columns")
    if columns is not None and [c["name"] for c in schema] != columns:
        problems.append(f"columns: object has {[c['name'] for c in schema]}, manifest says {columns}")
    return VerifyResult(bucket, key, rows=rows, bytes=size, sha256=sha, problems=tuple(problems))


def parse_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"expected s3://bucket/key, got {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ValueError(f"expected s3://bucket/key, got {uri!r}")
    return bucket, key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m subscription_exports.verify",
        description="Check an exported object's rows, bytes and sha256 against its manifest.",
    )
    parser.add_argument("--conn-id", required=True, help="Airflow connection (type aws) that can read the bucket")
    parser.add_argument("uri", nargs="+", help="s3://bucket/key of an exported data file")
    args = parser.parse_args(argv)
    try:
        targets = [parse_uri(u) for u in args.uri]
    except ValueError as exc:
        print(f"FAILED {exc}", file=sys.stderr)
        return 2
    # One line of output: keep Airflow's informational logging (connection lookup) quiet, and its
    # import deprecation warnings (Airflow 3.1 warns about its own modules' moved names) off stderr.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")
    # Airflow 3.1 also warns about SQLAlchemy's deprecations when it reads a connection. Airflow adds its
    # own warning filters when imported: silenced again after the import.
    warnings.simplefilter("ignore")
    try:
        import airflow.settings  # noqa: F401  (initialised here, so that its filters come before ours)

        from subscription_exports.s3 import s3_client

        warnings.simplefilter("ignore")
        client = s3_client(args.conn_id)
    except Exception as exc:
        print(f"FAILED connection '{args.conn_id}': {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return 2
    status = 0
    for bucket, key in targets:
        result = verify_object(client, bucket, key)
        print(result.line(), file=sys.stdout if result.ok else sys.stderr)
        status = status or (0 if result.ok else 1)
    return status


if __name__ == "__main__":
    sys.exit(main())

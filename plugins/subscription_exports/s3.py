"""S3 side: clients from Airflow connections, destination checks, atomic streaming uploads.

An object appears whole or not at all: small files are one PUT, large ones a multipart upload
that only becomes visible on ``CompleteMultipartUpload`` and is aborted on any failure. Parts
upload in background threads while the next chunk is extracted, with a bound on parts in
flight so memory stays bounded by ``part_size``, not by the day.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

MIB = 1 << 20
# Small parts keep memory low (parts in flight x part size); the size doubles every
# PARTS_PER_SIZE parts so a file can still grow to terabytes within S3's 10,000 parts.
DEFAULT_PART_SIZE = 5 * MIB  # the S3 minimum
# Parts uploading at once. With one, the export waits whenever the next part is full before the
# store has taken the last; two absorb that jitter: 1M rows 11.6 s instead of 12.9 s of task time
# for about 5 MB (one more part buffer), measured interleaved; three gained nothing more.
PARTS_IN_FLIGHT = 2
PARTS_PER_SIZE = 1000
S3_CONN_TYPES = {"aws", "s3"}


class DestinationError(RuntimeError):
    """A destination cannot be used; the message names destination, connection and bucket."""


class DestinationUnavailable(DestinationError):
    """The destination check met an error that may pass (store unreachable, 5xx, throttling): the
    task fails this try and Airflow retries it."""


def error_code(exc: BaseException) -> str:
    """The store's error code (e.g. SignatureDoesNotMatch), or a short description of a transport error."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        code = err.get("Code") or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        message = err.get("Message") or ""
        return f"{code}: {message}".strip().rstrip(":") if message else code or type(exc).__name__
    text = " ".join(str(exc).split())
    # Transport errors embed the request URL; drop its query so the cause stays in view.
    text = re.sub(r"(https?://[^\s?\"']+)\?[^\s\"']*", r"\1", text)
    return f"{type(exc).__name__}: {text}"[:600]


def s3_client(conn_id: str) -> Any:
    """A boto3 S3 client for an Airflow ``aws`` connection (endpoint URL, region, addressing style,
    CA bundle and retries come from the connection's extra)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import BaseHook
    from botocore.config import Config

    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type not in S3_CONN_TYPES:
        raise ValueError(f"connection '{conn_id}' has type '{conn.conn_type}', expected 'aws'")
    # One hook: each hook reads the connection's credentials once and logs "credentials retrieved".
    hook = S3Hook(aws_conn_id=conn_id)
    # Retries with exponential backoff for throttling/5xx/dropped connections unless the
    # connection says otherwise; explicit config_kwargs in the extra win.
    defaults = Config(
        retries={"mode": "standard", "total_max_attempts": 8},
        connect_timeout=10,
        read_timeout=120,
        tcp_keepalive=True,
    )
    wrapper = hook.conn_config  # the connection as the hook reads it (cached): its config is the client's
    configured = wrapper.botocore_config
    config = defaults.merge(configured) if configured else defaults
    if signs_every_payload(wrapper.endpoint_url, config) and not checksum_setting_given(configured):
        config = config.merge(Config(request_checksum_calculation="when_required"))
    wrapper.botocore_config = config
    return hook.get_conn()


CHECKSUM_SETTING_VARIABLE = "AWS_REQUEST_CHECKSUM_CALCULATION"


def signs_every_payload(endpoint_url: str | None, config: Any) -> bool:
    """Whether botocore puts the SHA-256 of every request body in its signature (SigV4), which the
    store verifies: over plain ``http://``, unless the connection turns payload signing off.

    Over ``https://`` (AWS's own endpoints included) botocore signs no body and sends a CRC32 of it
    instead, which is then the only check of the bytes. Over ``http://`` it computes both by
    default; the CRC32 (about 0.2 CPU-s per 450 MB) adds nothing the signed SHA-256 does not
    already prove, so ``s3_client`` leaves it to the operations that require one.
    """
    s3_settings = getattr(config, "s3", None) or {}
    return (
        bool(endpoint_url)
        and endpoint_url.lower().startswith("http://")
        and (s3_settings.get("payload_signing_enabled") is not False)
    )


def checksum_setting_given(configured: Any) -> bool:
    """Whether the connection (``config_kwargs``) or the worker's environment chose when botocore
    computes request checksums: that choice is kept."""
    return bool(os.environ.get(CHECKSUM_SETTING_VARIABLE)) or (
        getattr(configured, "request_checksum_calculation", None) is not None
    )


# Answers worth another try later: throttling (botocore's list of throttling codes, which it
# already retries within a call) and transient server errors, by code or HTTP status.
THROTTLING_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
     "TooManyRequestsException", "RequestLimitExceeded", "BandwidthLimitExceeded", "RequestThrottled",
     "ProvisionedThroughputExceededException", "LimitExceededException", "EC2ThrottledException"}
)  # fmt: skip
TRANSIENT_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# TLS errors that no retry fixes: an untrusted certificate, or plain HTTP at an https:// endpoint.
PERMANENT_TLS = ("certificate verify failed", "wrong version number", "hostname mismatch")


def transient(exc: BaseException) -> bool:
    """Whether retrying later can help: the store unreachable or timing out, a dropped connection,
    a 5xx answer or throttling. False for everything retrying cannot fix: credentials
    (InvalidAccessKeyId, SignatureDoesNotMatch), permissions (AccessDenied), a missing bucket,
    invalid settings (endpoint, region, parameters), an untrusted TLS certificate."""
    from botocore.exceptions import ClientError, HTTPClientError, SSLError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in THROTTLING_CODES or code in TRANSIENT_CODES or status in TRANSIENT_STATUSES
    if isinstance(exc, SSLError):
        text = str(exc).lower()
        return not any(marker in text for marker in PERMANENT_TLS)
    # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError, ConnectionClosedError,
    # ReadTimeoutError, ResponseStreamingError.
    return isinstance(exc, BotoConnectionError | HTTPClientError)


def check_destination(client: Any, *, bucket: str, prefix: str) -> None:
    """Bucket reachable and prefix writable, using only ListBucket and *Object permissions.

    Writes and deletes one empty probe object under ``<prefix>/.export-write-check/``.
    Raises the store's exception; the caller phrases it for the user.
    """
    client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", MaxKeys=1)
    probe = "/".join(p for p in (prefix, ".export-write-check", uuid.uuid4().hex) if p)
    client.put_object(Bucket=bucket, Key=probe, Body=b"")
    client.delete_object(Bucket=bucket, Key=probe)


def abort_stale_uploads(client: Any, *, bucket: str, key: str) -> int:
    """Abort unfinished multipart uploads of exactly ``key`` left by earlier tries.

    A task killed with SIGKILL (OOM killer, lost worker) cannot abort its own upload; its parts
    stay stored, invisible, until aborted. The next try of the same export cleans them up here.
    Best effort: it needs ``s3:ListBucketMultipartUploads`` and ``s3:AbortMultipartUpload``; without
    them a warning is logged and the bucket lifecycle rule ``AbortIncompleteMultipartUpload`` is the
    safety net. An export of the same key still running elsewhere loses its upload and fails with
    ``NoSuchUpload`` (and is retried): the later export wins. Returns the number aborted.
    """
    aborted = 0
    try:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key):
            for upload in page.get("Uploads", []):
                if upload.get("Key") != key:
                    continue
                try:
                    client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
                    aborted += 1
                except Exception as exc:
                    if not error_code(exc).startswith("NoSuchUpload"):
                        log.warning(
                            "could not abort stale multipart upload of s3://%s/%s (%s)", bucket, key, error_code(exc)
                        )
    except Exception as exc:
        log.warning(
            "could not list unfinished multipart uploads of s3://%s/%s (%s); a bucket lifecycle rule "
            "AbortIncompleteMultipartUpload removes those of killed tasks",
            bucket,
            key,
            error_code(exc),
        )
    if aborted:
        log.info("aborted %d unfinished multipart upload(s) of s3://%s/%s left by an earlier try", aborted, bucket, key)
    return aborted


class AtomicUpload:
    """Write bytes; ``commit()`` makes the object visible, ``abort()`` leaves nothing behind."""

    def __init__(
        self,
        client: Any,
        *,
        bucket: str,
        key: str,
        extra_args: dict[str, Any] | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_in_flight: int = PARTS_IN_FLIGHT,
    ) -> None:
        if part_size < 5 * MIB:
            raise ValueError("part_size must be at least 5 MiB (S3 minimum)")
        self.client, self.bucket, self.key = client, bucket, key
        self.extra_args = dict(extra_args or {})
        self.part_size = self._base_part_size = part_size
        self.max_in_flight = max_in_flight
        self._buffer: bytearray | None = None  # the part being filled
        self._buffered = 0
        # A part whose upload has finished, kept to fill the next part: a fresh part buffer is a fresh
        # mapping whose every page faults in (and is zeroed first), about 0.3 CPU-s per GB.
        self._spare: bytearray | None = None
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._part_number = 0
        self._pending: deque[tuple[Future, bytearray]] = deque()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.bytes_written = 0
        self.etag: str | None = None  # of the stored object, after commit()

    def write(self, data: bytes) -> None:
        # Each part is filled in place, exactly part_size bytes: every byte is copied once, and
        # nothing of the caller's data is kept (holding its chunks until a join kept up to one part
        # more alive).
        self.bytes_written += len(data)
        # Unsigned bytes (an Arrow buffer's view is signed), so it can be assigned to a view of the part.
        view = memoryview(data).cast("B")
        while len(view):
            if self._buffer is None:
                self._buffer = self._new_buffer()
            taken = view[: self.part_size - self._buffered]
            # Through a view: a bytearray's own slice assignment first copies any value that is not
            # a bytearray into a new one, a fresh mapping per chunk (each page faulted in): about
            # 0.3 CPU-s per GB. The view is released at once: a bytearray with a view cannot resize.
            with memoryview(self._buffer) as part:
                part[self._buffered : self._buffered + len(taken)] = taken
            self._buffered += len(taken)
            view = view[len(taken) :]
            if self._buffered == self.part_size:
                self._submit_part(self._take_buffer())
                # Part n is base x 2^((n-1) // PARTS_PER_SIZE) bytes, however many parts one write fills.
                self.part_size = self._base_part_size << (self._part_number // PARTS_PER_SIZE)

    def _new_buffer(self) -> bytearray:
        spare, self._spare = self._spare, None
        if spare is not None and len(spare) == self.part_size:
            return spare  # every byte is overwritten before the part is sent
        return bytearray(self.part_size)

    def _wait_oldest(self) -> None:
        future, chunk = self._pending.popleft()
        future.result()
        self._spare = chunk  # botocore is done with it once upload_part has returned

    def _take_buffer(self) -> bytearray:
        data = self._buffer if self._buffer is not None else bytearray()
        del data[self._buffered :]  # the last part: shrunk in place
        self._buffer = None
        self._buffered = 0
        return data

    def _submit_part(self, chunk: bytearray) -> None:
        if self._upload_id is None:
            abort_stale_uploads(self.client, bucket=self.bucket, key=self.key)
            resp = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key, **self.extra_args)
            self._upload_id = resp["UploadId"]
            self._pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="s3-part")
        # Bound memory: wait for the oldest part before queueing more than max_in_flight.
        while len(self._pending) >= self.max_in_flight:
            self._wait_oldest()
        # A plain counter: deriving the number from finished/pending parts can repeat one when a
        # part finishes while still queued, and a repeated number silently replaces that part.
        self._part_number += 1
        number = self._part_number
        assert self._pool is not None
        self._pending.append((self._pool.submit(self._upload_part, number, chunk), chunk))

    def _upload_part(self, number: int, chunk: bytearray) -> None:
        resp = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=chunk
        )
        with self._lock:
            self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})

    def commit(self, before_visible: Callable[[], None] | None = None) -> None:
        """Make the object visible. ``before_visible`` runs once every byte is stored, just before."""
        if self._upload_id is None:
            if before_visible:
                before_visible()
            resp = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self._take_buffer(), **self.extra_args)
            self.etag = resp.get("ETag")
            return
        if self._buffered:
            self._submit_part(self._take_buffer())
        while self._pending:
            self._wait_oldest()
        self._spare = None
        parts = sorted(self._parts, key=lambda p: p["PartNumber"])
        if before_visible:
            before_visible()
        resp = self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": parts}
        )
        self.etag = resp.get("ETag")
        self._shutdown()

    def abort(self) -> None:
        for fut, _ in self._pending:
            fut.cancel()
        self._shutdown()
        if self._upload_id is not None:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
            except Exception as exc:  # keep the original failure; say what is left behind
                log.warning(
                    "could not abort multipart upload of s3://%s/%s (%s); a bucket lifecycle rule "
                    "AbortIncompleteMultipartUpload removes it",
                    self.bucket,
                    self.key,
                    error_code(exc),
                )
        self._buffer = self._spare = None

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()


# gzip by ISA-L's deflate (``isal``), level 3, its best: about 260 MB/s of an export's CSV on this
# machine against 46 MB/s for zlib at level 6, for 29% of the plain bytes against 26% (ISA-L's level 2
# is as fast but stores 30.3%). Standard gzip: any gunzip gives the plain bytes back.
GZIP_LEVEL = 3


def gzip_compressor(level: int = GZIP_LEVEL) -> Any:
    """A deflate stream in a gzip container with mtime 0 (wbits 31), so identical data gives identical bytes."""
    from isal import isal_zlib

    return isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)


class ObjectSink:
    """Optional gzip, then sha256 and byte count of exactly the bytes stored, then the upload."""

    def __init__(self, upload: AtomicUpload, *, gzip: bool, gzip_level: int = GZIP_LEVEL) -> None:
        self.upload = upload
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._compressor = gzip_compressor(gzip_level) if gzip else None

    def _emit(self, data: bytes) -> None:
        if data:
            self.sha256.update(data)
            self.size += len(data)
            self.upload.write(data)

    def write(self, data: bytes) -> None:
        self._emit(self._compressor.compress(data) if self._compressor else data)

    def commit(self, before_visible: Callable[[], None] | None = None) -> None:
        if self._compressor:
            self._emit(self._compressor.flush())
        self.upload.commit(before_visible)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.upload.abort()

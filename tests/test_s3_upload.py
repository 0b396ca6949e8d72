"""AtomicUpload against a real SeaweedFS: multipart bytes are exact, failures leave nothing behind."""

from __future__ import annotations

import gzip
import hashlib
import os

import pytest
from conftest import EXPORTER

from devtools.seaweedfs import list_multipart_uploads
from subscription_exports import s3 as s3_module
from subscription_exports.s3 import MIB, AtomicUpload, ObjectSink

pytestmark = pytest.mark.system


def chunks(total: int, size: int, seed: bytes) -> list[bytes]:
    """Deterministic pseudo-random data in uneven chunks (so writes straddle part boundaries)."""
    out, counter = [], 0
    while total > 0:
        block = b"".join(
            hashlib.sha256(seed + (counter + i).to_bytes(8, "big")).digest() for i in range(size // 32 + 1)
        )
        out.append(block[: min(size, total)])
        total -= size
        counter += size
    return out


@pytest.mark.parametrize("max_in_flight", [1, 2, 4])
def test_multipart_upload_is_byte_exact(seaweedfs, s3, max_in_flight):
    client = seaweedfs.client_for(EXPORTER)
    data = chunks(23 * MIB + 12345, 777_777, seed=bytes([max_in_flight]))
    upload = AtomicUpload(client, bucket="exports", key="big.csv", part_size=5 * MIB, max_in_flight=max_in_flight)
    sink = ObjectSink(upload, gzip=False)
    for block in data:
        sink.write(block)
    sink.commit()
    body = s3.get_object(Bucket="exports", Key="big.csv")["Body"].read()
    assert body == b"".join(data)
    assert sink.size == len(body) and sink.sha256.hexdigest() == hashlib.sha256(body).hexdigest()
    assert list_multipart_uploads(s3, "exports") == []


def test_every_kind_of_buffer_is_written_exactly_across_parts(seaweedfs, s3):
    """The exporter writes Arrow buffers (whose views are signed bytes), slices of them, bytes and
    bytearrays; each kind straddles a part boundary somewhere, and the object is their bytes in order."""
    import pyarrow as pa

    blocks = chunks(12 * MIB + 999, 1_234_567, seed=b"kinds")
    kinds = [
        lambda b: b,
        bytearray,
        memoryview,
        pa.py_buffer,
        lambda b: pa.py_buffer(b"xx" + b + b"yy")[2 : 2 + len(b)],  # a slice with an offset
        lambda b: memoryview(pa.py_buffer(b)),
    ]
    upload = AtomicUpload(seaweedfs.client_for(EXPORTER), bucket="exports", key="kinds.csv", part_size=5 * MIB)
    for i, block in enumerate(blocks):
        upload.write(kinds[i % len(kinds)](block))
    upload.write(b"")
    upload.commit()
    assert s3.get_object(Bucket="exports", Key="kinds.csv")["Body"].read() == b"".join(blocks)
    assert upload.bytes_written == sum(map(len, blocks))


def test_small_object_is_a_single_put(seaweedfs, s3):
    upload = AtomicUpload(seaweedfs.client_for(EXPORTER), bucket="exports", key="small.csv", part_size=5 * MIB)
    upload.write(b"a,b\r\n")
    upload.commit()
    assert s3.get_object(Bucket="exports", Key="small.csv")["Body"].read() == b"a,b\r\n"


def test_abort_leaves_no_object_and_no_unfinished_upload(seaweedfs, s3):
    upload = AtomicUpload(seaweedfs.client_for(EXPORTER), bucket="exports", key="aborted.csv", part_size=5 * MIB)
    upload.write(os.urandom(11 * MIB))  # two parts already uploading
    upload.abort()
    assert "Contents" not in s3.list_objects_v2(Bucket="exports", Prefix="aborted")
    assert list_multipart_uploads(s3, "exports") == []


def stored_part_sizes(s3, key: str) -> list[int]:
    head = s3.head_object(Bucket="exports", Key=key, PartNumber=1)
    count = head.get("PartsCount", 1)
    return [s3.head_object(Bucket="exports", Key=key, PartNumber=n)["ContentLength"] for n in range(1, count + 1)]


@pytest.mark.parametrize("write_size", [777_777, 23 * MIB], ids=["chunks", "one-write-of-many-parts"])
def test_part_size_doubles_every_parts_per_size_parts(seaweedfs, s3, monkeypatch, write_size):
    # PARTS_PER_SIZE is 1000 in production (terabytes within 10,000 parts); 2 makes the doubling
    # boundaries reachable: parts of 5, 5, 10, 10, 20 MiB... whatever size the writes have.
    monkeypatch.setattr(s3_module, "PARTS_PER_SIZE", 2)
    data = b"".join(chunks(41 * MIB + 7, 777_777, seed=b"doubling"))
    upload = AtomicUpload(seaweedfs.client_for(EXPORTER), bucket="exports", key="doubling.csv", part_size=5 * MIB)
    sink = ObjectSink(upload, gzip=False)
    for start in range(0, len(data), write_size):
        sink.write(data[start : start + write_size])
    sink.commit()
    assert s3.get_object(Bucket="exports", Key="doubling.csv")["Body"].read() == data
    assert stored_part_sizes(s3, "doubling.csv") == [5 * MIB, 5 * MIB, 10 * MIB, 10 * MIB, 11 * MIB + 7]


def test_gzip_stream_across_parts_is_exact(seaweedfs, s3):
    # Incompressible data so the gzip stream itself spans three parts; writes straddle them.
    data = chunks(13 * MIB + 999, 333_333, seed=b"gzip")
    upload = AtomicUpload(seaweedfs.client_for(EXPORTER), bucket="exports", key="big.csv.gz", part_size=5 * MIB)
    sink = ObjectSink(upload, gzip=True)
    for block in data:
        sink.write(block)
    sink.commit()
    body = s3.get_object(Bucket="exports", Key="big.csv.gz")["Body"].read()
    assert len(stored_part_sizes(s3, "big.csv.gz")) == 3
    assert gzip.decompress(body) == b"".join(data)
    assert sink.size == len(body) and sink.sha256.hexdigest() == hashlib.sha256(body).hexdigest()
    assert list_multipart_uploads(s3, "exports") == []


def test_gzip_is_standard_and_the_same_data_gives_the_same_bytes(seaweedfs, s3):
    """ISA-L's deflate (s3.gzip_compressor) in a gzip container: the system's `gzip -d` gives the plain
    bytes back, the header carries no time (mtime 0), and two uploads of the same data are identical."""
    import subprocess

    from devtools.synthetic import HOSTILE_TEXT

    lines = [
        f"{i},{HOSTILE_TEXT[i % len(HOSTILE_TEXT)]!r},2026-03-07T12:34:{i % 60:02d}.{i:06d}+00:00\r\n"
        for i in range(99_999)
    ]
    data = "".join(lines).encode()
    bodies = []
    for name in ("first.csv.gz", "second.csv.gz"):
        sink = ObjectSink(AtomicUpload(seaweedfs.client_for(EXPORTER), bucket="exports", key=name), gzip=True)
        for start in range(0, len(data), 999_999):
            sink.write(data[start : start + 999_999])
        sink.commit()
        bodies.append(s3.get_object(Bucket="exports", Key=name)["Body"].read())
    assert bodies[0] == bodies[1]
    assert bodies[0][:4] == b"\x1f\x8b\x08\x00" and bodies[0][4:8] == b"\0\0\0\0"  # gzip, deflate, no name, mtime 0
    assert subprocess.run(["gzip", "-dc"], input=bodies[0], capture_output=True, check=True).stdout == data
    assert len(bodies[0]) < 0.3 * len(data)


def test_default_upload_overlaps_parts_but_holds_at_most_one_more_buffer(seaweedfs, s3):
    """Two parts upload at once by default (the export waits less on the store), and memory stays
    bounded: never more than PARTS_IN_FLIGHT parts uploading, and part buffers are reused, so the
    upload holds at most PARTS_IN_FLIGHT + 1 of them however many parts the object has."""
    import threading
    import time

    client = seaweedfs.client_for(EXPORTER)
    lock, running, most, bodies = threading.Lock(), [0], [0], {}

    class Counting:  # the real client, with its part uploads counted (and slowed so they overlap)
        def __getattr__(self, name):
            return getattr(client, name)

        def upload_part(self, **kwargs):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
                bodies[id(kwargs["Body"])] = kwargs["Body"]  # kept alive: an id is never reused
            try:
                time.sleep(0.05)
                return client.upload_part(**kwargs)
            finally:
                with lock:
                    running[0] -= 1

    data = chunks(41 * MIB + 7, 1_000_003, seed=b"in flight")
    upload = AtomicUpload(Counting(), bucket="exports", key="overlap.csv", part_size=5 * MIB)
    assert upload.max_in_flight == s3_module.PARTS_IN_FLIGHT == 2
    for block in data:
        upload.write(block)
    upload.commit()
    assert s3.get_object(Bucket="exports", Key="overlap.csv")["Body"].read() == b"".join(data)
    assert most[0] == s3_module.PARTS_IN_FLIGHT  # 9 parts: they did overlap, and never more
    assert len(bodies) <= s3_module.PARTS_IN_FLIGHT + 1
    assert list_multipart_uploads(s3, "exports") == []

"""The channel between the COPY producer thread and the parse (``source.ByteChannel``): every byte
in order whatever the write and read sizes, end of stream on the writer's close, and a producer
that stops (``BrokenPipeError``) when the consumer closes, also while it waits for room.

Unit tests of the hand-off alone; the whole stream from PostgreSQL and SQLite, with a consumer
that stops early and a terminated backend, is exercised by the system tests
(``test_faults_system.py``, ``test_big_hostile_day_system.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading

import pyarrow as pa
import pytest

from subscription_exports.source import ByteChannel


def pseudo_random(size: int, seed: int) -> bytes:
    blocks = (hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(size // 32 + 1))
    return b"".join(blocks)[:size]


def produce(channel: ByteChannel, pieces: list, buffer_size: int, failures: list) -> threading.Thread:
    def run() -> None:
        writer = io.BufferedWriter(channel.writer, buffer_size=buffer_size)
        try:
            for piece in pieces:
                writer.write(piece)
        except BaseException as exc:
            failures.append(exc)
        finally:
            with contextlib.suppress(BrokenPipeError):
                writer.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# Buffers of 7 bytes and reads of 1-3 bytes make every offset a boundary somewhere; a piece larger
# than the writer's and the channel's buffers goes through in several raw writes.
@pytest.mark.parametrize(
    ("channel_size", "writer_buffer", "read_size", "piece_sizes"),
    [
        (7, 5, 1, [1, 2, 3, 13, 0, 7, 64]),
        (7, 16, 3, [7, 7, 7, 1]),
        (1 << 20, 1 << 20, 512 << 10, [471] * 3000 + [3 << 20, 5]),
        (64, 8, 100, [1000]),
    ],
)
def test_every_byte_arrives_in_order_whatever_the_sizes(channel_size, writer_buffer, read_size, piece_sizes):
    data = pseudo_random(sum(piece_sizes), seed=channel_size + read_size)
    pieces, at = [], 0
    for i, size in enumerate(piece_sizes):
        piece = data[at : at + size]
        # the producer writes what drivers write: bytes, and buffers whose views are signed (Arrow)
        pieces.append(pa.py_buffer(piece) if i % 3 == 2 else piece)
        at += size
    channel, failures = ByteChannel(buffers=2, size=channel_size), []
    thread = produce(channel, pieces, writer_buffer, failures)
    reader = io.BufferedReader(channel.reader, buffer_size=max(read_size // 2, 1))
    got = bytearray()
    target = bytearray(read_size)
    while n := reader.readinto(target):
        got += target[:n]
    thread.join(timeout=10)
    assert not failures
    assert bytes(got) == data
    assert reader.read() == b""  # the end stays the end


def test_read_all_and_text_reads_see_the_same_bytes():
    data = 'a,b\r\n"x\r\ny",ü\r\n'.encode() * 1000
    for read in (lambda r: r.read(), lambda r: io.TextIOWrapper(r, encoding="utf-8", newline="").read().encode()):
        channel = ByteChannel(buffers=2, size=97)
        thread = produce(channel, [data[i : i + 50] for i in range(0, len(data), 50)], 64, [])
        assert read(io.BufferedReader(channel.reader, buffer_size=16)) == data
        thread.join(timeout=10)


def test_closing_the_reader_stops_a_producer_waiting_for_room():
    channel, failures = ByteChannel(buffers=2, size=4), []
    started = threading.Event()

    def run() -> None:
        started.set()
        try:
            for _ in range(1000):  # far more than two buffers hold: blocks until the reader closes
                channel.writer.write(memoryview(b"abcd"))
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5)
    reader = io.BufferedReader(channel.reader, buffer_size=4)
    assert reader.read(4) == b"abcd"
    reader.close()
    thread.join(timeout=5)
    assert not thread.is_alive(), "the producer still waits after the consumer closed"
    assert len(failures) == 1 and isinstance(failures[0], BrokenPipeError), failures
    with pytest.raises(BrokenPipeError):
        channel.writer.write(memoryview(b"more"))


def test_a_reader_waits_for_bytes_and_ends_when_the_writer_closes():
    channel = ByteChannel(buffers=2, size=8)
    reader = io.BufferedReader(channel.reader, buffer_size=8)
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.append(reader.read()), daemon=True)
    thread.start()
    thread.join(timeout=0.2)
    assert thread.is_alive(), "read() returned before the writer closed"
    channel.writer.write(memoryview(b"12345"))
    channel.writer.close()
    thread.join(timeout=5)
    assert got == [b"12345"]

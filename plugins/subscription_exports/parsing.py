"""Parse the source's intermediate CSV into Arrow record batches, exactly, or fail.

Arrow's streaming CSV reader is fast but has silently altered data (see below), and a file that
is wrong while its manifest vouches for it is the worst thing an exporter can produce. So the
parse is fenced twice:

1. ``RowAlignedReader`` works around the one corruption known here: with ``newlines_in_values``
   Arrow drops the LF of a quoted CRLF whose CR is the last byte of an input buffer
   (apache/arrow issue 51368; fix proposed in apache/arrow PR 51394, not in pyarrow 26.0.1). It
   hands Arrow only whole rows, so no buffer ends inside a value, let alone on its CR.
2. ``ParseAudit`` does not trust the parser at all: it counts the bytes, CRs, LFs and quotes of
   the stream as Arrow reads it, and the same in the values Arrow returns. Parsing CSV only
   removes delimiters, line ends and quoting, so the two must balance exactly (``check``); any
   byte lost, added or moved across a line end turns into a failed export instead of a file.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

# Source CSV parsed per chunk: small enough to bound memory, large enough to amortise kernel calls.
CHUNK_BYTES = 512 << 10
# Arrow's streaming reader reads up to 32 blocks ahead of the batches it has returned (its
# background reader's queue; not configurable from Python): 16 MiB of source bytes held at 512 KiB
# blocks. Reads wait instead while this many blocks (1 MiB) are ahead of the consumer. A wait ends
# after READ_AHEAD_WAIT seconds whatever happens, so a change in Arrow's internals can slow a
# parse but never stall it. Arrow reads the block after the one it parses before it returns that
# one's batch (a row's end may lie in it), so with 1 every read waits out the full second; with 2
# none waits, at 512 KiB blocks as at 1-byte ones (pyarrow 26), once a first read that holds only
# the header (no batch comes of it) is not counted. 4 held about 4.5 MB more at the peak for no
# measurable speed.
READ_AHEAD_BLOCKS = 2
READ_AHEAD_WAIT = 1.0
# How long a consumer that stops waits for a read running in Arrow's thread to return (``stop``).
STOP_WAIT = 10.0
# Read buffers kept for reuse: more than the blocks Arrow holds at once (those read ahead, the one
# being parsed), so a free one is nearly always there.
READ_BUFFERS = READ_AHEAD_BLOCKS + 4
CR, LF, QUOTE = b"\r", b"\n", b'"'
CR_BYTE, LF_BYTE, QUOTE_BYTE, COMMA_BYTE = CR[0], LF[0], QUOTE[0], b","[0]
CSV_SPECIALS = (b",", QUOTE, CR, LF)  # a value holding one of these is quoted in CSV


class ParseIntegrityError(RuntimeError):
    """The parsed values do not account for every byte of the source stream."""


@dataclass
class ByteCounts:
    """Bytes, CRs, LFs and double quotes seen in a byte stream or in parsed values."""

    size: int = 0
    cr: int = 0
    lf: int = 0
    quotes: int = 0
    # Comparison results land in one reused array: a fresh one per call is a fresh mapping per
    # block (each page faulted in), which cost more than the comparisons themselves.
    _scratch: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool), repr=False, compare=False)

    def add(self, data: bytes | bytearray, start: int = 0, stop: int | None = None) -> None:
        """Count ``data[start:stop]`` (all of it by default).

        Each byte is first looked for with ``find`` (memchr: a byte that is absent, as CR and the
        quote mostly are, costs a fast scan and no count); where it is found, it is counted from
        there on by a SIMD comparison (numpy, already loaded by pyarrow; ~8x faster than
        ``bytes.count``)."""
        stop = len(data) if stop is None else stop
        self.size += stop - start
        first = data.find(CR_BYTE, start, stop)
        if first >= 0:
            self.cr += self._count(data, CR_BYTE, first, stop)
        first = data.find(LF_BYTE, start, stop)
        if first >= 0:
            self.lf += self._count(data, LF_BYTE, first, stop)
        first = data.find(QUOTE_BYTE, start, stop)
        if first >= 0:
            self.quotes += self._count(data, QUOTE_BYTE, first, stop)

    def _count(self, data: bytes | bytearray, byte: int, start: int, stop: int) -> int:
        # The view's export of ``data`` ends with this call: a bytearray stays resizable.
        view = np.frombuffer(data, dtype=np.uint8, count=stop - start, offset=start)
        if self._scratch.size < view.size:
            self._scratch = np.empty(max(view.size, 2 * self._scratch.size), dtype=bool)
        return int(np.count_nonzero(np.equal(view, byte, out=self._scratch[: view.size])))


class _Scratch(threading.local):
    """Reused arrays for ``special_bytes`` (per thread): a fresh megabyte per call is a fresh
    mapping, each of its pages faulted in, which costs more than the comparisons."""

    found = np.empty(0, dtype=bool)
    other = np.empty(0, dtype=bool)

    def arrays(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        if self.found.size < size:
            self.found, self.other = np.empty(size, dtype=bool), np.empty(size, dtype=bool)
        return self.found[:size], self.other[:size]


_scratch = _Scratch()


def special_bytes(data: np.ndarray) -> np.ndarray:
    """Per byte, whether it is a comma, quote, CR or LF (SIMD comparisons into reused arrays: valid
    until the next call in this thread)."""
    found, other = _scratch.arrays(data.size)
    np.equal(data, CSV_SPECIALS[0][0], out=found)
    for special in CSV_SPECIALS[1:]:
        np.logical_or(found, np.equal(data, special[0], out=other), out=found)
    return found


class RowAlignedReader:
    """A binary stream for Arrow's CSV reader whose every read ends at the end of a CSV row.

    Why: with ``newlines_in_values``, Arrow drops the LF of a quoted CRLF whose CR is the last
    byte of one of its input buffers (apache/arrow issue 51368; fix proposed in apache/arrow PR
    51394, not released in the pinned pyarrow 26.0.1). A buffer that ends at a row end ends in an
    LF outside quotes, so no CRLF is ever split between two buffers; the same alignment lets a row
    be longer than a block (Arrow fails on a row that straddles more than two of its blocks). Both
    stay harmless once Arrow is fixed.

    How: a row ends at an LF outside quotes; in RFC 4180 CSV every ``"`` toggles "inside quotes"
    (a doubled quote toggles twice), so the parity of the quotes read so far tells where that is.
    Whatever follows the last row end is held back for the next read. A read returns at least one
    whole row, so it can be longer than ``size`` when a row is. Also counts what passes
    (``counts``), for ``ParseAudit``.

    With ``max_ahead``, a read waits while that many blocks are read and not yet ``consumed()``
    (see READ_AHEAD_BLOCKS); ``stalls`` counts waits that ended by timeout, ``most_ahead`` the
    most blocks ever ahead.
    """

    def __init__(self, raw: BinaryIO, *, max_ahead: int | None = None) -> None:
        self._raw = raw
        self._held = b""
        self.counts = ByteCounts()
        self._max_ahead = max_ahead
        self._ahead = 0
        self._turn = threading.Condition()
        # Buffers handed to Arrow, reused once it has let go of them (see _buffer).
        self._buffers: list[bytearray] = []
        self.stalls = 0
        self.most_ahead = 0
        self._stopped = False
        self._reading = 0  # reads running (Arrow's reader thread calls them)
        self._first = True

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._raw.close()

    def consumed(self) -> None:
        """The consumer is done with one more block's batch."""
        with self._turn:
            self._ahead = max(self._ahead - 1, 0)
            self._turn.notify_all()

    def stop(self, timeout: float | None = None) -> None:
        """The consumer has stopped: from now on a read waits for nothing and ends the stream, and
        this returns once no read is running (or after ``timeout``, STOP_WAIT by default).

        Why: Arrow's reader thread calls ``read`` on its own. Left reading after the consumer gave up
        (an upload failed), it could still be running Python code when the task's interpreter shuts
        down, which aborts the process ("PyGILState_Release: thread state must be current") and
        replaces the export's one-line error with a crash dump.
        """
        with self._turn:
            self._stopped = True
            self._max_ahead = None
            self._turn.notify_all()
            self._turn.wait_for(lambda: not self._reading, timeout=STOP_WAIT if timeout is None else timeout)

    def _wait_for_room(self) -> None:
        with self._turn:
            if self._max_ahead is not None:
                room = self._turn.wait_for(
                    lambda: self._max_ahead is None or self._ahead < self._max_ahead, timeout=READ_AHEAD_WAIT
                )
                self.stalls += not room
            self._ahead += 1
            self.most_ahead = max(self.most_ahead, self._ahead)

    def read(self, size: int = -1) -> bytes | bytearray:
        with self._turn:
            if self._stopped:
                return b""
            self._reading += 1
        try:
            self._wait_for_room()
            if self._stopped:
                return b""
            first, self._first = self._first, False
            block = self._read_rows(size)
            if first and _holds_one_row(block):
                self.consumed()  # the header alone: Arrow makes no batch of it
            return block
        finally:
            with self._turn:
                self._reading -= 1
                self._turn.notify_all()

    def _read_rows(self, size: int) -> bytes | bytearray:
        held, self._held = self._held, b""
        if size is None or size < 0:
            return self._read_joined(held, size)
        # One buffer per read, filled in place: the held tail, then the fresh bytes read into it
        # (slicing and joining bytes objects cost two more copies of every block).
        block = self._buffer(len(held) + max(size - len(held), 1))
        block[: len(held)] = held
        filled = len(held)
        while True:
            with memoryview(block) as view:
                got = self._read_into(view[filled:])
            if got:
                self.counts.add(block, filled, filled + got)
            if not got:  # end of stream: hand over whatever is left
                del block[filled:]
                return block
            end = self._last_row_end(block, filled, filled + got)
            filled += got
            if end >= 0:
                self._held = bytes(block[end:filled])
                del block[end:]  # shrunk in place
                return block
            # no row ends in what was read: one long row, read on
            block.extend(bytes(max(size, 1)) if filled == len(block) else b"")

    def _buffer(self, size: int) -> bytearray:
        """A buffer of ``size`` bytes: one Arrow no longer holds if there is one, else a new one.

        Why: a fresh 512 KiB buffer is a fresh mapping (memory.py), each of its pages faulted in:
        for a 1 GB day that is 250,000 page faults. Arrow wraps the returned buffer without copying,
        through the buffer protocol, and keeps that export open while it or any slice of it lives;
        a bytearray with an open export cannot be resized, so a resize that succeeds proves the
        buffer is free (a reference count would depend on the interpreter's own bookkeeping).
        """
        for block in self._buffers:
            try:
                block.append(0)  # BufferError while Arrow still holds it
            except BufferError:
                continue
            if len(block) > size:
                del block[size:]  # shrunk in place: the allocation stays
            else:
                block.extend(bytes(size - len(block)))
            return block
        block = bytearray(size)
        if len(self._buffers) < READ_BUFFERS:
            self._buffers.append(block)
        return block

    def _read_into(self, view: memoryview) -> int:
        if isinstance(self._raw, (io.BufferedIOBase, io.FileIO)):  # pipes, files, BytesIO
            return self._raw.readinto(view) or 0
        data = self._raw.read(len(view))  # a stream with only ``read``
        view[: len(data)] = data
        return len(data)

    def _read_joined(self, held: bytes, size: int | None) -> bytes:
        parts = [held]
        want = max(size - len(held), 1) if size is not None and size >= 0 else -1
        while True:
            fresh = self._raw.read(want)
            if not fresh:  # end of stream: hand over whatever is left
                return b"".join(parts)
            self.counts.add(fresh)
            end = self._last_row_end(fresh, 0, len(fresh))
            if end >= 0:
                parts.append(fresh[:end])
                self._held = fresh[end:]
                return b"".join(parts)
            parts.append(fresh)  # no row ends in it: one long row, read on
            want = max(size, 1) if want > 0 else -1

    def _last_row_end(self, data: bytes | bytearray, start: int, stop: int) -> int:
        """Offset just after the last LF outside quotes in ``data[start:stop]`` (the newest bytes
        read, whose counts are already in ``counts``), or -1."""
        inside = self.counts.quotes & 1  # state at ``stop``
        lf = data.rfind(LF, start, stop)
        while lf >= 0:
            inside ^= data.count(QUOTE, lf, stop) & 1  # state at ``lf``
            if not inside:
                return lf + 1
            stop, lf = lf, data.rfind(LF, start, lf)
        return -1


def _holds_one_row(block: bytes | bytearray) -> bool:
    """Whether ``block`` (whole rows from the stream's start) is one row: its first LF outside
    quotes is its last byte."""
    lf = block.find(LF)
    while lf >= 0 and block.count(QUOTE, 0, lf) & 1:
        lf = block.find(LF, lf + 1)
    return lf >= 0 and lf == len(block) - 1


def value_buffer(values: pa.Array) -> pa.Buffer | bytes:
    """All bytes of a string array's values, without copying (they are contiguous in its data buffer)."""
    offsets, data = values.buffers()[1:3]
    if data is None or len(values) == 0:
        return b""
    first, last = 4 * values.offset, 4 * (values.offset + len(values))
    start = int.from_bytes(offsets[first : first + 4], "little", signed=True)
    end = int.from_bytes(offsets[last : last + 4], "little", signed=True)
    return data[start:end]


def value_bytes(values: pa.Array) -> bytes:
    """All bytes of a string array's values, as one bytes object."""
    data = value_buffer(values)
    return data if isinstance(data, bytes) else data.to_pybytes()


class ChunkValues:
    """A chunk's values laid end to end in one reused buffer (``load``), and per column whether any
    of its values holds a comma, quote, CR or LF (``special``): only those can need quoting in CSV.

    The encoder needs those flags whether or not the parse is audited; ``ParseAudit`` counts the
    same buffer, so the flags cost it one memchr more (the comma)."""

    def __init__(self) -> None:
        self.text = bytearray()  # reused: a fresh ``bytes`` per chunk is a fresh mapping, each page faulted in
        self.size = 0
        self._values: pa.Array | None = None

    def load(self, batch: pa.RecordBatch) -> None:
        # All of the chunk's values in one pass, laid end to end by one Arrow call (reading each
        # column's buffers from Python costs more), then copied into ``text``, where ``find`` looks
        # for a byte with memchr.
        self._values = pa.concat_arrays(batch.columns)
        view = memoryview(value_buffer(self._values)).cast("B")
        if len(self.text) < view.nbytes:
            self.text.extend(bytes(view.nbytes - len(self.text)))
        with memoryview(self.text) as text:
            text[: view.nbytes] = view
        self.size = view.nbytes

    def special(self, batch: pa.RecordBatch, *, breaks: bool | None = None) -> tuple[bool, ...]:
        """Per column of the loaded ``batch``, whether any of its values holds a comma, quote, CR or
        LF. ``breaks``: whether the values hold a CR, LF or quote, when the caller already knows."""
        text, size = self.text, self.size
        if breaks is None:
            breaks = any(text.find(byte, 0, size) >= 0 for byte in (QUOTE_BYTE, LF_BYTE, CR_BYTE))
        # Most chunks hold none of the four: then every column is plain.
        if not breaks and text.find(COMMA_BYTE, 0, size) < 0:
            return (False,) * batch.num_columns
        found = np.flatnonzero(special_bytes(np.frombuffer(text, dtype=np.uint8, count=size)))
        # Column i's values are the i-th run of num_rows values: its bytes start at the offset of
        # value i * num_rows (offsets relative to the first value's, as ``text`` starts there).
        values = self._values
        first = np.frombuffer(values.buffers()[1], dtype=np.int32, count=len(values) + 1, offset=4 * values.offset)
        starts = first[np.arange(batch.num_columns) * batch.num_rows] - first[0]
        holding = np.unique(np.searchsorted(starts, found, side="right") - 1)
        special = [False] * batch.num_columns
        for column in holding.tolist():
            special[column] = True
        return tuple(special)


class ParseAudit:
    """Checks that the parsed values account for every byte of the source CSV stream.

    A parsed CSV is its values plus, per line, ``columns - 1`` commas and a line end (LF, or CRLF
    from SQLite), plus two quotes around each quoted field and one more per quote inside a value.
    Only the number of quoted fields is unknown, so it is derived from the quote balance and
    bounded; everything else must balance to the byte. Cost: per byte of the stream and of the
    values, a memchr for each of CR, LF and quote, and a vectorised count of those found (``make
    bench`` prints it).
    """

    def __init__(self, stream: RowAlignedReader, header: list[str]) -> None:
        self._stream = stream
        self._header_bytes = sum(len(name.encode("utf-8")) for name in header)
        self._columns = len(header)
        self.rows = 0
        self.values = ByteCounts()
        self._chunk = ChunkValues()

    def observe(self, batch: pa.RecordBatch) -> tuple[bool, ...]:
        """Count the chunk's values; return, per column, whether any of its values holds a comma,
        quote, CR or LF (``ChunkValues.special``: the encoder then scans only those columns)."""
        self.rows += batch.num_rows
        chunk, counts = self._chunk, self.values
        chunk.load(batch)
        before = counts.cr + counts.lf + counts.quotes
        counts.add(chunk.text, 0, chunk.size)
        return chunk.special(batch, breaks=counts.cr + counts.lf + counts.quotes != before)

    def check(self) -> None:
        raw, values = self._stream.counts, self.values
        lines = self.rows + 1  # the header line too
        line_lf, line_cr = raw.lf - values.lf, raw.cr - values.cr
        quoted_twice = raw.quotes - 2 * values.quotes  # two quotes per quoted field
        accounted = (
            self._header_bytes + values.size + values.quotes + quoted_twice
            + (self._columns - 1) * lines + line_lf + line_cr
        )  # fmt: skip
        problems = []
        if line_lf != lines:
            problems.append(f"{line_lf} LF outside values for {lines} lines")
        if line_cr not in (0, lines):
            problems.append(f"{line_cr} CR outside values for {lines} lines")
        if quoted_twice < 0 or quoted_twice % 2 or quoted_twice > 2 * lines * self._columns:
            problems.append(f"{raw.quotes} quotes in the stream against {values.quotes} in values")
        if accounted != raw.size:
            problems.append(f"{raw.size} bytes read but {accounted} accounted for")
        if problems:
            raise ParseIntegrityError(
                "the CSV parser's values do not match the source stream (" + "; ".join(problems) + "): "
                "no file was written, as it could differ from the source; report this as a bug"
            )


def arrow_reader(
    stream: BinaryIO | RowAlignedReader, columns: list[str], *, block_size: int
) -> pacsv.CSVStreamingReader:
    """Arrow's streaming CSV reader as the exporter configures it: every column text, NULL
    (unquoted empty) -> null, quoted empty -> empty string."""
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=block_size, use_threads=True),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in columns},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    )


@dataclass(frozen=True)
class ParsedChunk:
    """A parsed batch, and per column whether any of its values holds a comma, quote, CR or LF
    (``special``): only those can need quoting in CSV."""

    batch: pa.RecordBatch
    special: tuple[bool, ...]

    @property
    def plain(self) -> bool:
        """No value of the chunk holds a comma, quote, CR or LF."""
        return not any(self.special)


def open_parsed_chunks(stream: BinaryIO, columns: list[str], *, block_size: int = CHUNK_BYTES) -> Iterator[ParsedChunk]:
    """Parse the intermediate CSV in blocks of whole rows, audited (see the module's docstring).

    The last chunk is followed by the audit: if the values do not account for every byte of the
    stream, ``ParseIntegrityError`` is raised before the caller can finish (and publish) its file.
    """
    aligned = RowAlignedReader(stream, max_ahead=READ_AHEAD_BLOCKS)
    reader = None
    try:
        reader = arrow_reader(aligned, columns, block_size=block_size)
        got = reader.schema.names
        if got != columns:
            raise ValueError(f"the table's SQL returns columns {got}, but it must return exactly {columns}")
        audit = ParseAudit(aligned, got)
        for batch in reader:
            yield ParsedChunk(batch, audit.observe(batch))
            aligned.consumed()
        audit.check()
    finally:
        aligned.stop()
        if reader is not None:
            # Reads now end the stream: Arrow's reader finishes with the few blocks it holds, so its
            # background task is over before the caller (or the process) goes on.
            with contextlib.suppress(Exception):
                for _ in reader:
                    pass


def open_chunks(stream: BinaryIO, columns: list[str], *, block_size: int = CHUNK_BYTES) -> Iterator[pa.RecordBatch]:
    """``open_parsed_chunks``' batches alone (audited the same way)."""
    with contextlib.closing(open_parsed_chunks(stream, columns, block_size=block_size)) as chunks:
        for chunk in chunks:
            yield chunk.batch

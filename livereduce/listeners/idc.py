"""ISIS DAE "IDC" (ISISDS) protocol: the messages, shared by the histogram listener and the fake DAE.

Facts (shared/reference/mantid-livedata.md §2.3): native little-endian C structs over TCP. The client opens with
a 120-byte `isisds_open_t` (len, ver_major 1, ver_minor 1, pid, access_type, pad, user[32], host[64]); every
message after that is an 88-byte command header (len = header + data bytes, type, ndims, dims[11],
command[32]) followed by its data. GETPAR<type> asks for a named parameter; GETDAT [first, count] returns
int32 [count][nbins+1] histograms (bin 0 unused). The server answers "OK" with typed data.
"""

from __future__ import annotations

import socket
import struct
import time

import numpy as np

from livereduce.errors import ProtocolError
from livereduce.listeners.stream import enable_keepalive, recv_exact
from livereduce.workspace.spectra import Spectra

OPEN = struct.Struct("<6i32s64s")  # 120 bytes
HEADER = struct.Struct("<14i32s")  # len, type, ndims, dims[11], command: 88 bytes
UNKNOWN, INT32, REAL32, REAL64, CHAR = 0, 1, 2, 3, 4
DTYPES: dict[int, np.dtype] = {
    INT32: np.dtype("<i4"),
    REAL32: np.dtype("<f4"),
    REAL64: np.dtype("<f8"),
    CHAR: np.dtype("u1"),
}
GETPAR_TYPES = {"I32": INT32, "R32": REAL32, "R64": REAL64, "C08": CHAR}
MAX_MESSAGE = 64 << 20  # no legitimate reply is larger; more means garbage
MAX_REQUEST_BYTES = 1 << 20  # the client keeps each GETDAT reply under 1 MiB, as Mantid does
MAX_TABLE = 1 << 24  # most values a parameter table (UDET, SPEC, ...) may hold: more means garbage
SPECTRA_WITHOUT_DETECTORS = 1 << 16  # NSP1 may exceed the detector count (UDET's size) by at most this


def pack_open(user: str = "livereduce", host: str = "localhost", access_type: int = 0) -> bytes:
    return OPEN.pack(OPEN.size, 1, 1, 0, access_type, 0, user.encode()[:32], host.encode()[:64])


def unpack_open(raw: bytes) -> tuple[int, int, int]:
    length, major, minor, _pid, _access, _pad, _user, _host = OPEN.unpack(raw)
    return length, major, minor


def pack_message(command: str, dtype: int = UNKNOWN, data=None) -> bytes:
    """A command header plus its data; `data` is a numpy array (its shape gives dims) or bytes."""
    if data is None:
        payload, dims = b"", []
    elif isinstance(data, bytes | bytearray):
        payload, dims = bytes(data), [len(data)]
    else:
        array = np.ascontiguousarray(data, dtype=DTYPES[dtype])
        payload, dims = array.tobytes(), list(array.shape)
    if len(dims) > 11:
        raise ValueError("at most 11 dimensions")
    dims11 = dims + [0] * (11 - len(dims))
    return HEADER.pack(HEADER.size + len(payload), dtype, len(dims), *dims11, command.encode()[:32]) + payload


def read_message(sock: socket.socket, deadline: float | None = None) -> tuple[str, int, list[int], bytes]:
    """(command, type, dims, data) of the next message; ProtocolError if it does not hold together. With a
    `deadline` (time.monotonic()), TimeoutError once it passes, however slowly the bytes arrive."""
    fields = HEADER.unpack(recv_exact(sock, HEADER.size, deadline=deadline))
    length, dtype, ndims, dims11, command = fields[0], fields[1], fields[2], fields[3:14], fields[14]
    if not HEADER.size <= length <= MAX_MESSAGE:
        raise ProtocolError(f"IDC message length {length} out of range")
    if dtype not in (UNKNOWN, *DTYPES) or not 0 <= ndims <= 11:
        raise ProtocolError(f"IDC message with type {dtype} and {ndims} dimensions")
    dims = list(dims11[:ndims])
    if any(d < 0 for d in dims):
        raise ProtocolError(f"IDC message with negative dimensions {dims}")
    data = recv_exact(sock, length - HEADER.size, deadline=deadline)
    if dtype in DTYPES:
        elements = 1
        for d in dims:  # Python ints: eleven dimensions of 2^31 must not wrap around
            elements *= d
        if elements * DTYPES[dtype].itemsize != len(data):
            raise ProtocolError(
                f"IDC message: dims {dims} of type {dtype} do not match {len(data)} data bytes"
            )
    return command.split(b"\0", 1)[0].decode("ascii", "replace"), dtype, dims, data


def decode(dtype: int, dims: list[int], data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=DTYPES[dtype]).reshape(dims)


class IDCClient:
    """A blocking IDC connection to a DAE: open, GETPAR*, GETDAT.

    Every exchange has a deadline, so a DAE that accepts and then trickles bytes (or sends nothing) cannot
    hold the caller: the open handshake must finish within `handshake_timeout` (default `timeout`), and each
    request's reply within `timeout` — or before `deadline` (time.monotonic()), when the caller sets one to
    bound a whole series of requests. Expiry raises TimeoutError (an OSError); replies that do not hold
    together raise ProtocolError. Values are checked before use (`getpar_int`, `getpar_vector`)."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float = 30.0,
        *,
        connect_timeout: float = 5.0,
        handshake_timeout: float | None = None,
    ):
        sock = socket.create_connection((host, port), timeout=min(connect_timeout, timeout))
        enable_keepalive(sock)
        self._open(sock, timeout, timeout if handshake_timeout is None else handshake_timeout)

    @classmethod
    def over(cls, sock, timeout: float = 30.0, handshake_timeout: float | None = None) -> IDCClient:
        """A client over a connected socket (or anything with recv_into, sendall and settimeout)."""
        client = cls.__new__(cls)
        client._open(sock, timeout, timeout if handshake_timeout is None else handshake_timeout)
        return client

    def _open(self, sock, timeout: float, handshake_timeout: float) -> None:
        self.sock, self.timeout = sock, timeout
        self.deadline: float | None = None
        try:
            sock.settimeout(handshake_timeout)
            sock.sendall(pack_open())
            command, _, _, _ = read_message(sock, time.monotonic() + handshake_timeout)
        except EOFError as exc:
            self.close()
            raise ProtocolError(f"DAE closed the connection during the open handshake ({exc})") from exc
        except TimeoutError as exc:
            self.close()
            raise TimeoutError(
                f"no open handshake from the DAE within {handshake_timeout:g} s ({exc})"
            ) from exc
        except BaseException:
            self.close()
            raise
        if command != "OK":
            self.close()
            raise ProtocolError(f"DAE refused the connection: {command!r}")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _request(self, message: bytes) -> tuple[int, list[int], bytes]:
        deadline = time.monotonic() + self.timeout
        if self.deadline is not None:
            deadline = min(deadline, self.deadline)
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the DAE's replies took longer than the deadline")
        self.sock.settimeout(left)
        self.sock.sendall(message)
        command, dtype, dims, data = read_message(self.sock, deadline)
        if command != "OK":
            raise ProtocolError(f"DAE answered {command!r}")
        return dtype, dims, data

    def getpar(self, name: str, kind: str) -> np.ndarray:
        """Numeric parameter `name` of type I32, R32 or R64, as the DAE shaped it."""
        dtype, dims, data = self._getpar(name, kind)
        return decode(dtype, dims, data)

    def getpar_vector(self, name: str, kind: str, min_size: int = 0, max_size: int = MAX_TABLE) -> np.ndarray:
        """Numeric parameter `name` flattened to 1-D; ProtocolError unless min_size ≤ size ≤ max_size."""
        values = self.getpar(name, kind).reshape(-1)
        if not min_size <= values.size <= max_size:
            raise ProtocolError(f"parameter {name} has {values.size} values, expected {min_size}..{max_size}")
        return values

    def getpar_int(self, name: str, low: int, high: int) -> int:
        """Integer parameter `name` (its first value); ProtocolError unless low ≤ value ≤ high."""
        value = int(self.getpar_vector(name, "I32", 1)[0])
        if not low <= value <= high:
            raise ProtocolError(f"parameter {name} = {value} is outside {low}..{high}")
        return value

    def getpar_text(self, name: str) -> str:
        """Text parameter `name` (type C08)."""
        _, _, data = self._getpar(name, "C08")
        return data.split(b"\0", 1)[0].decode("ascii", "replace").strip()

    def _getpar(self, name: str, kind: str) -> tuple[int, list[int], bytes]:
        dtype, dims, data = self._request(pack_message(f"GETPAR{kind}", CHAR, name.encode()))
        if dtype != GETPAR_TYPES[kind]:
            raise ProtocolError(f"parameter {name}: asked for {kind}, DAE sent type {dtype}")
        return dtype, dims, data

    def getdat(self, first: int, count: int, nbins: int) -> np.ndarray:
        """int32 [count][nbins+1] histograms of DAE spectrum indices first..first+count-1, in ≤1 MiB requests."""
        per_request = max(1, MAX_REQUEST_BYTES // ((nbins + 1) * 4))
        parts = []
        for start in range(first, first + count, per_request):
            n = min(per_request, first + count - start)
            dtype, dims, data = self._request(pack_message("GETDAT", INT32, np.array([start, n])))
            if dtype != INT32 or dims != [n, nbins + 1]:
                raise ProtocolError(f"GETDAT [{start}, {n}] answered with type {dtype}, dims {dims}")
            parts.append(decode(dtype, dims, data))
        return np.concatenate(parts) if parts else np.empty((0, nbins + 1), np.int32)


def check_spectrum_count(nsp1: int, udet: np.ndarray) -> None:
    """NSP1 must fit the detector table: every real spectrum is fed by detectors, so a count far above UDET's
    size is garbage (and would size large arrays)."""
    if nsp1 > udet.size + SPECTRA_WITHOUT_DETECTORS:
        raise ProtocolError(f"NSP1 = {nsp1} spectra for only {udet.size} detectors")


def spectra_from_tables(numbers, udet, spec, instrument: str) -> Spectra:
    """Spectra with their detector ids (UDET[i] belongs to spectrum SPEC[i]); ProtocolError if the tables
    do not pair up."""
    udet, spec = np.asarray(udet).reshape(-1), np.asarray(spec).reshape(-1)
    if udet.size != spec.size:
        raise ProtocolError(
            f"the DAE's UDET ({udet.size} values) and SPEC ({spec.size}) tables differ in size"
        )
    numbers = np.asarray(numbers, np.int32)
    order = np.argsort(spec, kind="stable")
    sorted_spec = spec[order]
    starts = np.searchsorted(sorted_spec, numbers, "left")
    stops = np.searchsorted(sorted_spec, numbers, "right")
    counts = stops - starts
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # every spectrum's detectors at once: position k of spectrum j is sorted position starts[j] + k
    within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], counts)
    det = udet[order[np.repeat(starts, counts) + within]]
    nan = np.full(numbers.size, np.nan)
    return Spectra(
        numbers,
        np.asarray(det, np.int32),
        offsets,
        nan,
        nan.copy(),
        np.zeros(numbers.size),
        instrument=instrument,
    )

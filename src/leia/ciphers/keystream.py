"""Key derivation: an HMAC-SHA256 counter-mode byte stream and unbiased draws from it.

Every piece of key material in leia comes from `KeyStream`, never from a library RNG, so a key is
identical on every machine, device and library version (schemes.md, "Keys").

Stream definition (the contract that makes keys portable):
    block_c = HMAC-SHA256(secret, label || uint64_be(c)),   c = 0, 1, 2, ...
    label   = b"leia-v1" followed by each label part as uint32_be(len(part)) || part (UTF-8)
The length prefixes keep labels unambiguous whatever an image identifier contains.

Draws consume the stream in order:
- `bits(n)`: bytes, least-significant bit first;
- `below(k, n)`: uniform digits in 0..k-1 for k <= 256 (uint8). With j the largest power such that
  k**j <= 256, a byte b is accepted when b < (256 // k**j) * k**j and yields the j base-k digits of
  b % k**j, least significant first (k = 6 gives 3 digits per byte, accepting b < 216);
- `permutation(n)`: Fisher-Yates, for i = n-1 .. 1 swap a[i] with a[j], j uniform in 0..i from a
  uint32_be word w accepted when w < 2**32 - (2**32 mod (i+1)), j = w mod (i+1).
"""

from __future__ import annotations

import abc
import functools
import hashlib
import math
import os
import struct

import numpy as np

_PREFIX = b"leia-v1"
_BLOCK = 32


def encode_parts(parts: tuple[str, ...]) -> bytes:
    out = []
    for part in parts:
        data = str(part).encode("utf-8")
        out.append(struct.pack(">I", len(data)))
        out.append(data)
    return b"".join(out)


def encode_label(parts: tuple[str, ...]) -> bytes:
    return _PREFIX + encode_parts(parts)


def _digit_params(k: int) -> tuple[int, int, int]:
    """(digits per byte j, base k**j, acceptance limit) for uniform base-k digits from bytes."""
    if not 2 <= k <= 256:
        raise ValueError(f"below() draws digits for 1 <= k <= 256, got k={k}")
    j = int(math.floor(math.log(256, k) + 1e-9))
    base = k**j
    return j, base, (256 // base) * base


def bits_many(sources: list["_Draws"], n: int) -> np.ndarray:
    """`bits(n)` of every source, as one [S, n] array (vectorised over the sources)."""
    width = -(-n // 8)
    raw = np.frombuffer(b"".join(s.read(width) for s in sources), dtype=np.uint8).reshape(len(sources), width)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :n]


def below_many(sources: list["_Draws"], k: int, n: int) -> np.ndarray:
    """`below(k, n)` of every source, as one [S, n] uint8 array. Each source yields the digits of
    its accepted bytes in stream order, however many bytes are read at a time."""
    if k == 1:
        return np.zeros((len(sources), n), dtype=np.uint8)
    j, base, limit = _digit_params(k)
    need = -(-n // j)  # accepted bytes per source
    p = limit / 256
    # Bytes to read so that a source is short only ~0.1% of the time (mean + 3 sd of a negative binomial).
    width = int(need / p + 3 * math.sqrt(need * (1 - p)) / p) + 8
    raw = np.frombuffer(b"".join(s.read(width) for s in sources), dtype=np.uint8).reshape(len(sources), width)
    accepted = raw < limit
    rank = np.cumsum(accepted, axis=1, dtype=np.int32)  # the first `need` accepted bytes of a row, in order
    full = rank[:, -1] >= need
    chosen = np.empty((len(sources), need), dtype=np.uint8)
    chosen[full] = raw[full][(accepted & (rank <= need))[full]].reshape(-1, need)
    for r in np.flatnonzero(~full):  # rare: this source needs more bytes
        row = raw[r]
        while np.count_nonzero(row < limit) < need:
            row = np.concatenate([row, np.frombuffer(sources[r].read(64), dtype=np.uint8)])
        chosen[r] = row[row < limit][:need]
    digits = _digit_table(k)[chosen]  # [S, need, j], least significant digit first
    return digits.reshape(len(sources), -1)[:, :n]


@functools.lru_cache(maxsize=None)
def _digit_table(k: int) -> np.ndarray:
    """The j base-k digits of (b mod k**j) for every byte b, as uint8 [256, j]."""
    j, base, _ = _digit_params(k)
    b = np.arange(256, dtype=np.int64) % base
    return ((b[:, None] // k ** np.arange(j)) % k).astype(np.uint8)


_COUNTERS = [struct.pack(">Q", c) for c in range(256)]


def _counters(start: int, stop: int) -> list[bytes]:
    if stop <= len(_COUNTERS):
        return _COUNTERS[start:stop]
    return [struct.pack(">Q", c) for c in range(start, stop)]


class _Hmac:
    """HMAC-SHA256 with the pad states hashed once (RFC 2104); ~2x faster than hmac.digest here."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: bytes):
        key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def prefixed(self, prefix: bytes):
        inner = self._inner.copy()
        inner.update(prefix)
        return inner

    def finish(self, inner) -> bytes:
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class _Draws(abc.ABC):
    """Unbiased draws over a byte source (`read`)."""

    @abc.abstractmethod
    def read(self, n: int) -> bytes:
        """The next n bytes of the source."""

    def bits(self, n: int) -> np.ndarray:
        """n independent fair bits as uint8 0/1."""
        return bits_many([self], n)[0]

    def below(self, k: int, n: int) -> np.ndarray:
        """n independent uniform integers in 0..k-1 (1 <= k <= 256), as uint8."""
        return below_many([self], k, n)[0]

    def permutation(self, n: int) -> np.ndarray:
        """A uniform random permutation of 0..n-1 (unbiased Fisher-Yates), as int64."""
        a = list(range(n))
        if n < 2:
            return np.asarray(a, dtype=np.int64)
        bounds = np.arange(n, 1, -1, dtype=np.uint64)  # i + 1 for i = n-1 .. 1
        limits = (2**32 - (2**32 % bounds)).astype(np.uint64)
        words = np.frombuffer(self.read(4 * len(bounds)), dtype=">u4").astype(np.uint64)
        js = []
        step = 0
        while step < len(bounds):
            ok = words[: len(bounds) - step] < limits[step:]
            if ok.all():
                js.extend((words[: len(bounds) - step] % bounds[step:]).tolist())
                break
            first_bad = int(np.argmin(ok))  # reject that word; every later word shifts by one
            js.extend((words[:first_bad] % bounds[step : step + first_bad]).tolist())
            step += first_bad
            words = np.concatenate(
                [words[first_bad + 1 :], np.frombuffer(self.read(4), dtype=">u4").astype(np.uint64)]
            )
        for i, j in zip(range(n - 1, 0, -1), js):
            a[i], a[j] = a[j], a[i]
        return np.asarray(a, dtype=np.int64)


class KeyStream(_Draws):
    """A labelled pseudo-random byte stream derived from a secret. Holds key material: never log it."""

    def __init__(self, secret: bytes, *label: str, _mac: _Hmac | None = None, _state=None):
        self._mac = _mac or _Hmac(secret)
        self._prefix = _state if _state is not None else self._mac.prefixed(encode_label(label))
        self._counter = 0
        self._buffer = b""

    def __repr__(self) -> str:
        return "KeyStream(<secret>)"

    def read(self, n: int) -> bytes:
        if n < 0:
            raise ValueError(f"cannot read {n} bytes")
        need = n - len(self._buffer)
        if need > 0:
            # Inlined HMAC blocks with bound methods: this loop is the cost of deriving per-image keys.
            prefix_copy, outer_copy = self._prefix.copy, self._mac._outer.copy
            start = self._counter
            self._counter += -(-need // _BLOCK)
            blocks = []
            append = blocks.append
            for counter in _counters(start, self._counter):
                inner = prefix_copy()
                inner.update(counter)
                h = outer_copy()
                h.update(inner.digest())
                append(h.digest())
            self._buffer += b"".join(blocks)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


class SystemRandom(_Draws):
    """Throw-away key material from the operating system's CSPRNG (never reproducible)."""

    def read(self, n: int) -> bytes:
        return os.urandom(n)


class KeyDeriver:
    """Makes the labelled streams of one secret; all key components of a scheme come from here.
    The base label is absorbed into the HMAC state once; streams and children continue from it
    (label concatenation is part of the encoding, so this equals hashing the full label)."""

    def __init__(self, secret: bytes, *base_label: str, _mac: _Hmac | None = None, _state=None):
        self._mac = _mac or _Hmac(secret)
        self._state = _state if _state is not None else self._mac.prefixed(encode_label(base_label))

    def __repr__(self) -> str:
        return "KeyDeriver(<secret>)"

    def _extended(self, label: tuple[str, ...]):
        state = self._state.copy()
        state.update(encode_parts(label))
        return state

    def stream(self, *label: str) -> KeyStream:
        return KeyStream(b"", _mac=self._mac, _state=self._extended(label))

    def child(self, *label: str) -> "KeyDeriver":
        return KeyDeriver(b"", _mac=self._mac, _state=self._extended(label))

    def digest(self, *label: str) -> bytes:
        return self.stream(*label).read(32)

"""Where a key's secret comes from: a seed (experiments), bytes/str, a secret file, or LEIA_SECRET."""

from __future__ import annotations

import hashlib
import os
import secrets as _pysecrets
from pathlib import Path

from ..errors import KeyMaterialError
from .keyfile import warn_if_shared

ENV_VAR = "LEIA_SECRET"
MIN_HEX = 32  # a secret from the environment or a file: at least 128 bits, as hex
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
SECRET_BYTES = 32


class Secret:
    """Root key material. `repr`/`str` never show it; `origin` says where it came from."""

    __slots__ = ("_value", "origin")

    def __init__(self, value: bytes, origin: str):
        if not isinstance(value, bytes) or not value:
            raise KeyMaterialError("a secret must be non-empty bytes")
        self._value = value
        self.origin = origin

    @property
    def value(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<redacted>, origin={self.origin!r})"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and _pysecrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._value).digest())

    @classmethod
    def from_seed(cls, seed: int) -> "Secret":
        # Seeds name reproducible experiment keys; they are not secret.
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise KeyMaterialError(f"seed must be an int, got {type(seed).__name__}")
        return cls(hashlib.sha256(b"leia-v1/seed/" + str(seed).encode()).digest(), f"seed={seed}")

    @classmethod
    def from_value(cls, value: bytes | str, origin: str = "secret", strict: bool = False) -> "Secret":
        """A secret given as bytes or text. `strict` (LEIA_SECRET and secret files, which people type
        or copy): hex of at least MIN_HEX digits (128 bits), as `leia keygen` writes. The secret is
        the text's bytes either way, so keys made before this check are unchanged."""
        if isinstance(value, str):
            value = value.strip().encode("utf-8")
        if not isinstance(value, bytes):
            raise KeyMaterialError(f"secret must be bytes or str, got {type(value).__name__}")
        if not value:
            raise KeyMaterialError(f"the secret from {origin} is empty")
        if strict and not (len(value) >= MIN_HEX and all(c in HEX_DIGITS for c in value.strip())):
            what = "not hex" if any(c not in HEX_DIGITS for c in value.strip()) else f"{len(value.strip())} hex digits"
            raise KeyMaterialError(f"the secret from {origin} is too weak ({what}): it must be at least 128 bits as "
                                   f"hex ({MIN_HEX}+ hex digits). Make one with `leia keygen PATH`")
        return cls(value, origin)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Secret":
        path = Path(path)
        if not path.is_file():
            raise KeyMaterialError(f"secret file {str(path)!r} does not exist (make one with `leia keygen {path}`)")
        warn_if_shared(path, "secret file")
        return cls.from_value(path.read_bytes().strip(), origin=f"file {path.name}", strict=True)

    @classmethod
    def from_env(cls) -> "Secret | None":
        value = os.environ.get(ENV_VAR)
        return None if value is None else cls.from_value(value, origin=f"${ENV_VAR}", strict=True)

    @classmethod
    def generate(cls) -> "Secret":
        return cls(_pysecrets.token_bytes(SECRET_BYTES), "generated")

    @classmethod
    def resolve(
        cls,
        *,
        seed: int | None = None,
        secret: bytes | str | None = None,
        secret_file: str | os.PathLike | None = None,
        required_by: str = "this scheme",
    ) -> "Secret":
        """Exactly one explicit source, else LEIA_SECRET, else a clear error."""
        given = [n for n, v in (("seed", seed), ("secret", secret), ("secret_file", secret_file)) if v is not None]
        if len(given) > 1:
            raise KeyMaterialError(f"give one key source, not {' and '.join(given)}")
        if seed is not None:
            return cls.from_seed(seed)
        if secret is not None:
            return cls.from_value(secret)
        if secret_file is not None:
            return cls.from_file(secret_file)
        env = cls.from_env()
        if env is None:
            raise KeyMaterialError(
                f"{required_by} needs a key: pass seed=<int> (experiments), secret=, secret_file= or "
                f"key_file=, or set {ENV_VAR} (see .env.example)"
            )
        return env


def write_secret_file(path: str | os.PathLike) -> Path:
    """Write a fresh 32-byte secret as hex, readable by the owner only; never overwrite."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists; refusing to overwrite a secret")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_pysecrets.token_hex(SECRET_BYTES) + "\n")
    return path

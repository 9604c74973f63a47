"""Key files: a key as a state dict (named integer arrays) plus scheme, parameters and a checksum.

Files are JSON (never pickle), written owner-readable only and never overwritten. The checksum is
SHA-256 over the canonical JSON of everything else; a file whose checksum does not match is refused.
The fingerprint (16 hex digits of a deliberately slow hash of the key: scrypt, see `Key.fingerprint`)
identifies a key in logs, manifests and run identities instead of the key itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import KeyMaterialError, KeyMismatchError

FORMAT = "leia-key"
VERSION = 1


def _encode_array(a: np.ndarray) -> dict:
    a = np.asarray(a)
    little = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return {"dtype": a.dtype.name, "shape": list(a.shape), "data": base64.b64encode(little.tobytes()).decode()}


def _decode_array(d: Mapping) -> np.ndarray:
    try:
        dtype = np.dtype(d["dtype"])
        if dtype.kind not in "iub":
            raise KeyMaterialError(f"key arrays must be integer, got dtype {dtype}")
        raw = np.frombuffer(base64.b64decode(d["data"]), dtype=dtype.newbyteorder("<"))
        return raw.astype(dtype).reshape(d["shape"])
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, KeyMaterialError):
            raise
        raise KeyMaterialError(f"malformed array in key file ({type(e).__name__})") from None


FINGERPRINT_SALT = b"leia-v2/key-fingerprint"


def warn_if_shared(path: Path, what: str) -> None:
    """Key files and secret files are written owner-only (mode 600); say so when one is not."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        warnings.warn(f"{what} {path} is readable by other users (mode {mode:o}); restrict it: chmod 600 {path}",
                      stacklevel=3)


def _canonical(body: Mapping) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, eq=False)
class Key:
    """Explicit key material of one scheme. `repr` shows only the fingerprint."""

    scheme: str
    params: Mapping[str, Any]
    components: Mapping[str, np.ndarray] = field(repr=False)
    image_size: tuple[int, int] | None = None

    def _body(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "scheme": self.scheme,
            "params": dict(self.params),
            "image_size": list(self.image_size) if self.image_size else None,
            "components": {k: _encode_array(v) for k, v in sorted(self.components.items())},
        }

    @property
    def checksum(self) -> str:
        return hashlib.sha256(_canonical(self._body())).hexdigest()

    @cached_property
    def fingerprint(self) -> str:
        """16 hex digits naming this key in logs, manifests and run identities: scrypt (N=2^14, r=8:
        about 70 ms and 16 MiB per key) of the key file's canonical body, so that testing candidate
        keys against a published fingerprint costs that much per candidate. The same key has this
        one fingerprint however it was made (`Cipher.fingerprint_for`)."""
        digest = hashlib.sha256(_canonical(self._body())).digest()
        return hashlib.scrypt(digest, salt=FINGERPRINT_SALT, n=2**14, r=8, p=1, dklen=8).hex()

    def __repr__(self) -> str:
        size = f", image_size={self.image_size}" if self.image_size else ""
        return f"Key(scheme={self.scheme!r}, params={dict(self.params)}{size}, fingerprint={self.fingerprint!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Key) and self.checksum == other.checksum

    def __hash__(self) -> int:
        return hash(self.checksum)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path} already exists; refusing to overwrite a key file")
        path.parent.mkdir(parents=True, exist_ok=True)
        body = self._body()
        body["checksum"] = hashlib.sha256(_canonical(body)).hexdigest()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(body, f, sort_keys=True, indent=1)
            f.write("\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Key":
        path = Path(path)
        if not path.is_file():
            raise KeyMaterialError(f"key file {str(path)!r} does not exist")
        warn_if_shared(path, "key file")
        try:
            body = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise KeyMaterialError(f"{path} is not a leia key file (expected JSON with format '{FORMAT}')") from None
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise KeyMaterialError(f"{path} is not a leia key file (expected format '{FORMAT}')")
        if body.get("version") != VERSION:
            raise KeyMaterialError(f"{path} has key file version {body.get('version')}, expected {VERSION}")
        checksum = body.pop("checksum", None)
        if checksum != hashlib.sha256(_canonical(body)).hexdigest():
            raise KeyMaterialError(f"{path}: checksum mismatch; the key file is corrupted or was edited")
        size = body.get("image_size")
        return cls(
            scheme=body["scheme"],
            params=body["params"],
            components={k: _decode_array(v) for k, v in body["components"].items()},
            image_size=tuple(size) if size else None,
        )

    def require(self, scheme: str, image_size: tuple[int, int] | None = None) -> None:
        """Refuse a key made for another scheme or image size."""
        if self.scheme != scheme:
            raise KeyMismatchError(f"this key is for scheme {self.scheme!r}, not {scheme!r}")
        if image_size is not None and self.image_size is not None and tuple(image_size) != self.image_size:
            h, w = self.image_size
            raise KeyMismatchError(
                f"this {scheme} key was made for {h}x{w} images, got {image_size[0]}x{image_size[1]}"
            )

"""leia.ciphers: learnable image encryption schemes, exact, invertible, batched, on any device.

    from leia import ciphers
    ciphers.names()                                   # registered schemes
    c = ciphers.create("etc", block_size=4, seed=0)   # or secret=..., secret_file=..., key_file=...
    y = c.encrypt(x)                                  # x: uint8 [..., 3, H, W] on any device
    assert (c.decrypt(y) == x).all()
"""

from __future__ import annotations

from typing import Mapping

from ..errors import (
    ImageDtypeError,
    ImageFormatError,
    InputError,
    KeyMaterialError,
    KeyMismatchError,
    LeiaError,
    NotInvertibleError,
    UnknownNameError,
)
from . import ele, etc, plain, scramblemix, skk, tanaka, vit_block  # noqa: F401  (registers the schemes)
from .base import SCHEMES, Cipher, register
from .keyfile import Key
from .secrets import ENV_VAR, Secret, write_secret_file
from .wrappers import BatchCipher, CipherTransform


def names() -> list[str]:
    """Names of the registered schemes."""
    return SCHEMES.names()


def get(name: str) -> type[Cipher]:
    return SCHEMES.get(name)


def create(name: str, **params) -> Cipher:
    """Build scheme `name` with its parameters and a key source (seed=, secret=, secret_file=,
    key_file= or key=; LEIA_SECRET when none is given)."""
    return SCHEMES.create(name, **params)


def from_config(scheme: Mapping, key: Mapping | None = None) -> Cipher:
    """Build a cipher from a `conf/scheme/*.yaml` node (name + parameters) and a `conf/key/*.yaml`
    node (seed, secret_file or key_file; empty means LEIA_SECRET)."""
    params = {k: v for k, v in dict(scheme).items() if k not in ("name", "defaults")}
    sources = {k: v for k, v in dict(key or {}).items() if v is not None}
    unknown = sorted(set(sources) - {"seed", "secret_file", "key_file"})
    if unknown:
        raise UnknownNameError(f"unknown key setting(s) {', '.join(unknown)}; expected seed, secret_file or key_file")
    if "key_file" in sources:
        return create(scheme["name"], key_file=sources["key_file"], **params)
    return create(scheme["name"], **params, **sources)


def load(key_file, **params) -> Cipher:
    """Build the cipher a key file was made for."""
    key = Key.load(key_file)
    return create(key.scheme, key=key, **params)


__all__ = [
    "BatchCipher", "Cipher", "CipherTransform", "ENV_VAR", "ImageDtypeError", "ImageFormatError", "InputError",
    "Key", "KeyMaterialError", "KeyMismatchError", "LeiaError", "NotInvertibleError", "Secret",
    "UnknownNameError", "create", "from_config", "get", "load", "names", "register", "write_secret_file",
]

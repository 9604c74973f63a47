"""leia.ciphers: learnable image encryption schemes, exact, invertible, batched, on any device.

    from leia import ciphers
    ciphers.names()                                   # registered schemes
    c = ciphers.create("etc", block_size=4, seed=0)   # or secret=..., secret_file=..., key_file=...
    y = c.encrypt(x)                                  # x: uint8 [..., 3, H, W] on any device
    assert (c.decrypt(y) == x).all()
"""

from __future__ import annotations

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
from . import ele, etc, plain, skk, tanaka, vit_block  # noqa: F401  (registers the schemes)
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


def load(key_file, **params) -> Cipher:
    """Build the cipher a key file was made for."""
    key = Key.load(key_file)
    return create(key.scheme, key=key, **params)


__all__ = [
    "BatchCipher", "Cipher", "CipherTransform", "ENV_VAR", "ImageDtypeError", "ImageFormatError", "InputError",
    "Key", "KeyMaterialError", "KeyMismatchError", "LeiaError", "NotInvertibleError", "Secret",
    "UnknownNameError", "create", "get", "load", "names", "register", "write_secret_file",
]

"""The cipher base class: a keyed bijection on uint8 images [..., 3, H, W] on any device.

A scheme subclass supplies four things: its parameters (`Params`), how key components are drawn
from a key stream (`derive`), how a key is checked when it comes from a file (`check_components`),
and how a key compiles into a gather map over the flat bytes of one image (`compile`). The base
class does validation, key sourcing, caching per image size and device, export and fingerprints.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from ..errors import ImageFormatError, InputError, KeyMaterialError, KeyMismatchError, NotInvertibleError, UnknownNameError
from .keyfile import Key
from .keystream import KeyDeriver
from .kernels import ByteMap, NibbleMap
from .secrets import Secret
from ..registry import Registry
from .validation import check_block_size, normalise_ids, to_uint8

KEY_SOURCES = ("seed", "secret", "secret_file", "key_file", "key")
# Images per kernel call. Intermediates of one chunk stay in cache: the YCbCr conversion of
# grayscale EtC measured ~7x faster in chunks of 512 than on 10,000 images at once.
CHUNK = 512


def _flat(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C*H*W] (explicit size, so an empty batch works too)."""
    return x.reshape(x.shape[0], math.prod(x.shape[1:]))


def log2_factorial(n: int) -> float:
    return math.lgamma(n + 1) / math.log(2)


COMPILE_BYTES_PER_BYTE = 100  # peak memory of compiling gather maps: ~5 GB for one 4096x4096 RGB key (issue #11)


class Cipher(abc.ABC):
    """Base of every scheme. Build through `leia.ciphers.create(name, **params)`."""

    name: ClassVar[str] = ""
    Params: ClassVar[type]
    keyed: ClassVar[bool] = True  # False for `plain`
    shape_dependent: ClassVar[bool] = True  # whether the key depends on the image size
    description: ClassVar[str] = ""

    def __init__(
        self,
        *,
        seed: int | None = None,
        secret: bytes | str | None = None,
        secret_file: str | None = None,
        key_file: str | None = None,
        key: Key | None = None,
        **params: Any,
    ):
        self._key: Key | None = None
        self._secret: Secret | None = None
        if key_file is not None or key is not None:
            if key_file is not None and key is not None:
                raise KeyMaterialError("give key_file= or key=, not both")
            if any(v is not None for v in (seed, secret, secret_file)):
                raise KeyMaterialError("give either a key file or a secret source (seed/secret/secret_file), not both")
            key = Key.load(key_file) if key_file is not None else key
            key.require(self.name)
            params = self._merge_key_params(key.params, params)
            self._key = key
        self.params = self._parse_params(params)
        if self._key is not None:
            self._secret = self._secret_from_key(self._key)
        elif self.keyed and self.uses_secret:
            self._secret = Secret.resolve(
                seed=seed, secret=secret, secret_file=secret_file, required_by=f"scheme {self.name!r}"
            )
        self._components_cache: dict[Any, Mapping[str, np.ndarray]] = {}
        self._fingerprints: dict[Any, str] = {}
        self._maps: dict[Any, tuple[ByteMap | NibbleMap, ByteMap | NibbleMap | None]] = {}

    # ------------------------------------------------------------------ parameters
    @classmethod
    def param_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls.Params)]

    @classmethod
    def _parse_params(cls, params: Mapping[str, Any]):
        unknown = sorted(set(params) - set(cls.param_names()))
        if unknown:
            raise UnknownNameError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for scheme "
                f"{cls.name!r}; its parameters are: {', '.join(cls.param_names()) or '(none)'}; "
                f"key sources: {', '.join(KEY_SOURCES)}"
            )
        return cls.Params(**params)

    def _merge_key_params(self, key_params: Mapping[str, Any], given: Mapping[str, Any]) -> dict:
        for name, value in given.items():
            if name in key_params and key_params[name] != value:
                raise KeyMismatchError(
                    f"this {self.name} key was made with {name}={key_params[name]!r}, but {name}={value!r} was asked for"
                )
        return {**key_params, **given}

    @property
    def block_size(self) -> int:
        return getattr(self.params, "block_size", 1)

    def n_blocks(self, h: int, w: int) -> int:
        """Number of M×M blocks of an h×w image."""
        return (h // self.block_size) * (w // self.block_size)

    @property
    def uses_secret(self) -> bool:
        return True

    @property
    def needs_ids(self) -> bool:
        return False

    def config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.params)

    def key_params(self) -> dict[str, Any]:
        """The parameters a key (file, folder manifest) records: `config()` less training-only options."""
        return self.config()

    def describe(self, image_size: tuple[int, int] | None = None) -> dict[str, Any]:
        """What may be logged about this cipher: never key material."""
        return {"scheme": self.name, "params": self.config(), "fingerprint": self.fingerprint_for(image_size)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        try:
            key = self.fingerprint
        except KeyMaterialError:
            key = "derived per image size"
        return f"{type(self).__name__}({args}{', ' if args else ''}key={key})"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_components_cache"], state["_maps"] = {}, {}  # rebuilt on demand in the new process
        return state

    # ------------------------------------------------------------------ keys
    def fingerprint_for(self, image_size: tuple[int, int] | None = None) -> str:
        """The key's fingerprint (`Key.fingerprint`): that of the key file this cipher would write
        for images of `image_size`, so one key has one fingerprint whether it came from a seed, a
        secret or a key file. Keys that depend on the image size need it, unless the cipher holds a
        key file (whose size it is)."""
        if not self.keyed:
            return "none"
        if self._key is None and self._secret is None:
            return "throwaway"
        size = tuple(image_size) if image_size is not None and self.shape_dependent else None
        if size not in self._fingerprints:
            try:
                self._fingerprints[size] = self.export_key(size).fingerprint
            except KeyMaterialError as e:
                if size is None and self.shape_dependent:
                    raise KeyMaterialError(f"a secret-derived {self.name} key depends on the image size, and so does "
                                           f"its fingerprint: use fingerprint_for((H, W))") from None
                raise e
        return self._fingerprints[size]

    @property
    def fingerprint(self) -> str:
        """`fingerprint_for()` without an image size (key files, size-independent keys)."""
        return self.fingerprint_for(None)

    def _secret_from_key(self, key: Key) -> Secret | None:
        return None

    def _label(self, h: int, w: int) -> tuple[str, ...]:
        """Stream label: scheme, structural parameters, and the image size when the key depends on it."""
        size = f"{h}x{w}" if self.shape_dependent else "any-size"
        return (self.name, f"M={self.block_size}", size)

    def components(self, h: int, w: int) -> Mapping[str, np.ndarray]:
        """The key components for images of size h x w (derived once, then cached)."""
        cache_key = (h, w) if self.shape_dependent else None
        if cache_key not in self._components_cache:
            if self._key is not None:
                self._key.require(self.name, (h, w) if self.shape_dependent else None)
                if self.shape_dependent and self._key.image_size is None:
                    raise KeyMismatchError(f"this {self.name} key has no image size, but {self.name} keys depend on it")
                comps = {k: np.asarray(v) for k, v in self._key.components.items()}
                self.check_components(comps, h, w)
            elif self._secret is not None:
                comps = self.derive(KeyDeriver(self._secret.value, *self._label(h, w)), h, w)
            else:
                raise KeyMaterialError(f"{self.name}: this cipher has no stored key to compile")
            self._components_cache[cache_key] = comps
        return self._components_cache[cache_key]

    def export_key(self, image_size: tuple[int, int] | None = None) -> Key:
        """The explicit key (a state dict) for images of `image_size`, for saving as a key file."""
        if self._key is not None and (not self.shape_dependent or image_size in (None, self._key.image_size)):
            return self._key
        if self.shape_dependent and image_size is None:
            raise KeyMaterialError(f"{self.name} keys depend on the image size; pass image_size=(H, W)")
        h, w = image_size if image_size is not None else (self.block_size, self.block_size)
        self.check_size(h, w)
        return Key(
            scheme=self.name,
            params=self.key_params(),
            components=dict(self.components(h, w)),
            image_size=(h, w) if self.shape_dependent else None,
        )

    def save_key(self, path, image_size: tuple[int, int] | None = None):
        return self.export_key(image_size).save(path)

    # ------------------------------------------------------------------ scheme hooks
    @abc.abstractmethod
    def derive(self, keys: KeyDeriver, h: int, w: int) -> dict[str, np.ndarray]:
        """Draw the key components for h x w images from the scheme's labelled streams."""

    def check_components(self, comps: Mapping[str, np.ndarray], h: int, w: int) -> None:
        """Validate key material loaded from a file; raise KeyMismatchError if it does not fit."""

    @abc.abstractmethod
    def compile(self, comps: Mapping[str, np.ndarray], h: int, w: int) -> ByteMap | NibbleMap:
        """The encryption map over the flat bytes of one image in cipher layout."""

    @abc.abstractmethod
    def key_space_bits(self, image_size: tuple[int, int] = (32, 32)) -> float:
        """log2 of the number of keys for images of `image_size`."""

    # ------------------------------------------------------------------ layout hooks
    def check_size(self, h: int, w: int) -> None:
        check_block_size(h, w, self.block_size, self.name)

    def cipher_shape(self, h: int, w: int) -> tuple[int, int, int]:
        """Shape [C, H, W] of the ciphertext of an h x w image."""
        return 3, h, w

    def plain_size(self, shape: tuple[int, int, int]) -> tuple[int, int]:
        """(h, w) of the plain image whose ciphertext has `shape`."""
        return shape[1], shape[2]

    def to_cipher_layout(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, h, w] uint8 -> the layout the gather map acts on (identity for colour schemes)."""
        return x

    def from_cipher_layout(self, y: torch.Tensor) -> torch.Tensor:
        return y

    # ------------------------------------------------------------------ encryption
    def maps(self, h: int, w: int, device: torch.device | str = "cpu"):
        """(encryption map, decryption map or None) for h x w images on `device`; compiled once."""
        device = torch.device(device)
        cpu = (h, w, "cpu", None)
        if cpu not in self._maps:
            try:
                enc = self.compile(self.components(h, w), h, w)
                self._maps[cpu] = (enc, enc.inverse() if enc.invertible else None)
            except MemoryError:
                need = COMPILE_BYTES_PER_BYTE * 3 * h * w / 2**30
                raise ImageFormatError(f"{self.name}: compiling a key for {h}x{w} images needs about {need:.1f} GiB "
                                       f"(~{COMPILE_BYTES_PER_BYTE} bytes per image byte), more than this machine "
                                       f"has; encrypt smaller images or tiles of them") from None
        key = (h, w, device.type, device.index)
        if key not in self._maps:
            enc, dec = self._maps[cpu]
            self._maps[key] = (enc.to(device), None if dec is None else dec.to(device))
        return self._maps[key]

    def encrypt(self, x: torch.Tensor, ids=None) -> torch.Tensor:
        """Encrypt images [..., 3, H, W] (uint8, or float holding exact k/255); same device and dtype out."""
        x8, restore = to_uint8(x, channels=3, what=f"{self.name}.encrypt")
        h, w = x8.shape[-2:]
        self.check_size(h, w)
        batch = x8.reshape(-1, 3, h, w)
        out = self._encrypt_batch(batch, ids)
        return restore(out.reshape(*x8.shape[:-3], *out.shape[1:]))

    def decrypt(self, y: torch.Tensor, ids=None) -> torch.Tensor:
        """Invert `encrypt`; y is shaped like `encrypt`'s output."""
        return self._decrypt(y, ids, self.from_cipher_layout)

    def _decrypt(self, y: torch.Tensor, ids, finish) -> torch.Tensor:
        c = self.cipher_shape(self.block_size, self.block_size)[0]
        y8, restore = to_uint8(y, channels=c, what=f"{self.name}.decrypt")
        h, w = self.plain_size(tuple(y8.shape[-3:]))
        self.check_size(h, w)
        batch = y8.reshape(-1, *y8.shape[-3:])
        ids = self._batch_ids(ids, batch.shape[0])
        parts = [
            finish(self._invert(batch[i : i + CHUNK], h, w, None if ids is None else ids[i : i + CHUNK]))
            for i in range(0, max(batch.shape[0], 1), CHUNK)  # one (empty) chunk for an empty batch
        ]
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        return restore(out.reshape(*y8.shape[:-3], *out.shape[1:]))

    @property
    def invertible(self) -> bool:
        return True

    # ------------------------------------------------------------------ views
    def views_for(self, train: bool, epoch: int) -> list[int] | None:
        """The view indices each image is encrypted into, for schemes that train on several views
        of an image (scramblemix): a batch then holds [B, views, C, H, W]. None: one ciphertext."""
        return None

    def encrypt_views(self, x: torch.Tensor, ids, views) -> torch.Tensor:
        raise InputError(f"{self.name} has one ciphertext per image, not views")

    def expected_roundtrip(self, x: torch.Tensor) -> torch.Tensor:
        """What decrypt(encrypt(x)) returns: x itself, except where a scheme documents a lossy step."""
        return x

    def _batch_ids(self, ids, batch: int):
        """Per-image ids as a list (checked against the batch) so they can be chunked with it."""
        if ids is None or not self.needs_ids:
            return ids
        return normalise_ids(ids, batch, self.name)

    def _reject_ids(self, ids) -> None:
        if ids is not None:
            raise InputError(
                f"{self.name} uses one key for every image; ids= is only for skk with key_mode=per_image"
            )

    def _encrypt_batch(self, x: torch.Tensor, ids) -> torch.Tensor:
        self._reject_ids(ids)
        h, w = x.shape[-2:]
        enc, _ = self.maps(h, w, x.device)
        out = torch.empty((x.shape[0], *self.cipher_shape(h, w)), dtype=torch.uint8, device=x.device)
        for start in range(0, x.shape[0], CHUNK):
            enc(_flat(self.to_cipher_layout(x[start : start + CHUNK])), out=_flat(out[start : start + CHUNK]))
        return out

    def _invert(self, y: torch.Tensor, h: int, w: int, ids) -> torch.Tensor:
        """Undo the gather map; returns the cipher layout (from_cipher_layout finishes it)."""
        self._reject_ids(ids)
        _, dec = self.maps(h, w, y.device)
        if dec is None:
            raise NotInvertibleError(f"{self!r} is not invertible")
        return dec(_flat(y)).reshape(y.shape)


SCHEMES: "Registry[Cipher]" = Registry("scheme")
register = SCHEMES.register

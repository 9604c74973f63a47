"""skk: pixel-based encryption (Sirichotedumrong, Kinoshita, Kiya; ICIP 2019, IEEE Access 2019).

Per pixel and colour component a bit r: where r = 1 the byte becomes q ⊕ 255 (NP). Then, with
`color_shuffle`, per pixel a colour order s in 0..5: output channel k takes the (NP-transformed)
input channel COLOR_PERMS[s][k]. Key components, drawn in (row, column, channel) order:
`np` [H, W, 3] bits and `color` [H, W] codes.

`color_shuffle: legacy_inplace` reproduces ScrambleMix's pixel encryption (Madono et al., PSIVT
2023, MADONOKOUKI/psivt23_scramblemix, scripts/scramblemix/pixel_based_encryption.py), which
assigns the channels in place on numpy views, as the published EtC code did (etc.py): output
channel k takes LEGACY_SOURCES[s][k], so 5 of the 6 codes duplicate a channel and nothing can
decrypt. Its key is the `true` key (same streams). It exists to reproduce numbers made with that code.

`key_mode: same` uses one key for every image (compiled into one gather, like the block schemes).
`key_mode: per_image` gives every image its own key, the scheme's "without key management" setting:
`per_image_keys: derived` derives it from the secret and a stable image id (pass `ids=`; same id,
same key), `random` draws throw-away keys from the OS CSPRNG that nobody keeps (no decryption).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from ..checks import check_choice
from ..errors import InputError, KeyMismatchError, NotInvertibleError
from . import base
from .base import Cipher, register
from .keyfile import Key
from .keystream import KeyDeriver, SystemRandom, below_many, bits_many
from .kernels import ByteMap
from .layout import COLOR_PERMS, COLOR_PERMS_INV, LEGACY_SOURCES, positions
from .secrets import Secret
from .validation import check_bits, normalise_ids

_PERMS = torch.from_numpy(COLOR_PERMS)
_PERMS_INV = torch.from_numpy(COLOR_PERMS_INV)
_LEGACY = torch.from_numpy(LEGACY_SOURCES)
COLOR_SHUFFLES = (True, False, "legacy_inplace")


def check_color_shuffle(owner: str, value) -> None:
    """The pixel encryption's colour mode (skk, and the scrambles of scramblemix): True and False
    are booleans, not 1 and 0."""
    if not any(value is c if isinstance(c, bool) else value == c for c in COLOR_SHUFFLES):
        raise InputError(f"{owner}: color_shuffle must be true, false or legacy_inplace, got {value!r}")


def skk_apply(x: torch.Tensor, keys: torch.Tensor, inverse: bool = False, legacy: bool = False) -> torch.Tensor:
    """Batched per-image kernel. x [B, 3, H, W] uint8; keys [B, 3 or 4, H, W] uint8 in kernel form:
    the NP mask (0/255) by input channel, then the colour code when colours are shuffled. `legacy`:
    the in-place channel assignment (forward only)."""
    npm = keys[:, :3]
    if keys.shape[1] == 3:
        return x ^ npm
    table = (_LEGACY if legacy else _PERMS_INV if inverse else _PERMS).to(x.device)
    src = table[keys[:, 3].long()].permute(0, 3, 1, 2)  # [B, 3, H, W] channel index
    if inverse:
        return torch.gather(x, 1, src) ^ npm
    return torch.gather(x ^ npm, 1, src)


def kernel_form(np_bits: np.ndarray, color: np.ndarray | None) -> np.ndarray:
    """np bits [..., H, W, 3] (0/1) and colour codes [..., H, W] -> uint8 [..., 3 or 4, H, W]."""
    mask = np.moveaxis(np_bits, -1, -3).astype(np.uint8) * 255
    return mask if color is None else np.concatenate([mask, color[..., None, :, :].astype(np.uint8)], axis=-3)


@register("skk")
class SKK(Cipher):
    description = "pixel-wise NP + colour shuffling (Sirichotedumrong, Kinoshita, Kiya 2019)"
    key_cache_bytes = 256 * 2**20  # derived per-image keys kept per id (LRU, ~4 bytes per pixel)

    @dataclass(frozen=True)
    class Params:
        key_mode: str = "same"
        color_shuffle: bool | str = True  # true | false | legacy_inplace
        per_image_keys: str = "derived"

        def __post_init__(self):
            check_choice("skk", "key_mode", self.key_mode, ("same", "per_image"))
            check_color_shuffle("skk", self.color_shuffle)
            check_choice("skk", "per_image_keys", self.per_image_keys, ("derived", "random"))

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._per_image_cache: OrderedDict = OrderedDict()
        self._per_image_cache_size = 0

    @property
    def per_image(self) -> bool:
        return self.params.key_mode == "per_image"

    @property
    def throwaway(self) -> bool:
        return self.per_image and self.params.per_image_keys == "random"

    @property
    def legacy(self) -> bool:
        return self.params.color_shuffle == "legacy_inplace"

    @property
    def invertible(self) -> bool:
        return not self.throwaway and not self.legacy

    @property
    def uses_secret(self) -> bool:
        return not self.throwaway

    @property
    def needs_ids(self) -> bool:
        return self.per_image and not self.throwaway

    def __getstate__(self):
        state = super().__getstate__()
        state["_per_image_cache"], state["_per_image_cache_size"] = OrderedDict(), 0
        return state

    # ------------------------------------------------------------------ keys
    def derive(self, keys, h, w):
        comps = {"np": keys.stream("np").bits(3 * h * w).reshape(h, w, 3)}
        if self.params.color_shuffle:
            comps["color"] = keys.stream("color").below(6, h * w).reshape(h, w)
        return comps

    def check_components(self, comps, h, w):
        if "np" not in comps:
            raise KeyMismatchError("skk key: component np (the NP bits) is missing")
        check_bits(np.asarray(comps["np"]), (h, w, 3), "np", "skk")
        if self.params.color_shuffle:
            color = np.asarray(comps.get("color", np.empty(0)))
            if color.shape != (h, w) or color.max(initial=0) > 5:
                raise KeyMismatchError(f"skk key: color must be codes 0..5 of shape [{h}, {w}]")
        elif "color" in comps:
            raise KeyMismatchError("skk key with color_shuffle=false must not carry colour codes")

    def _secret_from_key(self, key: Key) -> Secret | None:
        if not self.per_image:
            return None
        if "secret" not in key.components:
            raise KeyMismatchError("an skk per_image key file must hold the secret the per-image keys derive from")
        return Secret(bytes(np.asarray(key.components["secret"], dtype=np.uint8)), "key file")

    def export_key(self, image_size=None) -> Key:
        if self.throwaway:
            raise NotInvertibleError("skk per_image_keys=random draws throw-away keys; there is no key to save")
        if self.per_image:
            # Per-image keys are a function of the secret and the image id, so the secret is the key.
            secret = np.frombuffer(self._secret.value, dtype=np.uint8).copy()
            return Key(scheme=self.name, params=self.config(), components={"secret": secret})
        return super().export_key(image_size)

    def components(self, h, w):
        if self.per_image:
            raise KeyMismatchError("skk with per-image keys has no single key; use per_image_components(h, w, ids)")
        return super().components(h, w)

    def per_image_components(self, h: int, w: int, ids: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Keys for a batch as `derive` gives them: np bits [B, H, W, 3] and colour codes [B, H, W] (or None)."""
        keys = self._kernel_keys(h, w, ids)
        np_bits = np.moveaxis(keys[:, :3], 1, -1) // 255
        return np_bits, (keys[:, 3] if self.params.color_shuffle else None)

    def _kernel_keys(self, h: int, w: int, ids: list[str]) -> np.ndarray:
        """Keys for a batch in kernel form [B, 3 or 4, H, W]."""
        if self.throwaway:
            # Never reproduced, so drawn directly in kernel layout (NP mask by channel, then codes).
            draws, n = SystemRandom(), len(ids)
            keys = np.empty((n, 4 if self.params.color_shuffle else 3, h, w), dtype=np.uint8)
            np.multiply(draws.bits(n * 3 * h * w).reshape(n, 3, h, w), 255, out=keys[:, :3])
            if self.params.color_shuffle:
                keys[:, 3] = draws.below(6, n * h * w).reshape(n, h, w)
            return keys
        return np.stack(self._derived(h, w, ids))

    def _derived(self, h: int, w: int, ids: list[str]) -> list[np.ndarray]:
        """Derived per-image keys (kernel form), from the LRU cache or derived together for the missing ids."""
        cache = self._per_image_cache
        missing = list(dict.fromkeys(i for i in ids if (h, w, i) not in cache))
        if missing:
            # Same streams and values as derive(), with the numpy work done for all ids at once.
            base = KeyDeriver(self._secret.value, *self._label(h, w))
            keys = [base.child("image", i) for i in missing]
            bits = bits_many([k.stream("np") for k in keys], 3 * h * w).reshape(-1, h, w, 3)
            color = None
            if self.params.color_shuffle:
                color = below_many([k.stream("color") for k in keys], 6, h * w).reshape(-1, h, w)
            for image_id, packed in zip(missing, kernel_form(bits, color)):
                cache[(h, w, image_id)] = packed
                self._per_image_cache_size += packed.nbytes
        out = []
        for image_id in ids:
            cache.move_to_end((h, w, image_id))
            out.append(cache[(h, w, image_id)])
        while self._per_image_cache_size > self.key_cache_bytes and len(cache) > 1:
            _, old = cache.popitem(last=False)
            self._per_image_cache_size -= old.nbytes
        return out

    def compile(self, comps, h, w):
        pos = positions(3, h, w).transpose(1, 2, 0)  # [H, W, 3]: flat CHW position of (y, x, c)
        table = LEGACY_SOURCES if self.legacy else COLOR_PERMS
        src = table[comps["color"].astype(np.int64)] if "color" in comps else np.broadcast_to(np.arange(3), (h, w, 3))
        index = np.take_along_axis(pos, src, axis=2)
        mask = 255 * np.take_along_axis(comps["np"].astype(np.uint8), src, axis=2)
        return ByteMap.build(index.transpose(2, 0, 1).reshape(-1), mask.transpose(2, 0, 1).reshape(-1).astype(np.uint8))

    def key_space_bits(self, image_size=(32, 32)):
        pixels = image_size[0] * image_size[1]
        return 3 * pixels + (pixels * float(np.log2(6)) if self.params.color_shuffle else 0.0)

    # ------------------------------------------------------------------ per-image encryption
    def _per_image(self, x: torch.Tensor, ids, inverse: bool) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.throwaway:
            if ids is not None:
                raise InputError("skk per_image_keys=random ignores image ids; do not pass ids=")
            ids = [""] * b
        else:
            ids = normalise_ids(ids, b, "skk")
        out = torch.empty_like(x)
        step = base.CHUNK  # also bounds the int64 channel index of the kernel
        for start in range(0, b, step):
            keys = torch.from_numpy(self._kernel_keys(h, w, ids[start : start + step])).to(x.device)
            out[start : start + step] = skk_apply(x[start : start + step], keys, inverse, self.legacy)
        return out

    def _encrypt_batch(self, x, ids):
        if not self.per_image:
            return super()._encrypt_batch(x, ids)
        return self._per_image(x, ids, inverse=False)

    def _invert(self, y, h, w, ids):
        if not self.per_image:
            return super()._invert(y, h, w, ids)
        if self.legacy:
            raise NotInvertibleError("skk color_shuffle=legacy_inplace duplicates channels; nothing can decrypt it")
        if self.throwaway:
            raise NotInvertibleError(
                "skk per_image_keys=random draws throw-away keys that are never stored, so nothing can decrypt "
                "them; use per_image_keys=derived with ids= to be able to decrypt"
            )
        return self._per_image(y, ids, inverse=True)

"""etc: Encryption-then-Compression block scrambling (Kurihara, Imaizumi, Shiota, Kiya; Chuman et al.).

Colour-based (default): M×M blocks; block permutation K1 (output block i = input block K1[i]); then,
per output block i, dihedral op K2[i] (`layout.dihedral`), NP of the whole block when K3[i] = 1, and
colour order K4[i]. Grayscale-based (`grayscale: true`, Chuman et al., TIFS 2019): JPEG YCbCr planes
side by side as one H×3W single-channel image, then K1..K3 (no colour shuffle); decryption returns
the YCbCr planes exactly (`decrypt_planes`), the colour conversion is the only lossy step.

`color_shuffle: legacy_inplace` reproduces code that assigned channels in place
(img[..,0], img[..,1], img[..,2] = img[..,p0], img[..,p1], img[..,p2] on numpy views): a channel
already overwritten is read back, so 5 of the 6 codes duplicate a channel and nothing can decrypt.
It exists only to reproduce numbers published with that code (anchors.md §1, EtC column).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..checks import check_bool, check_choice, check_int
from ..errors import ImageFormatError, KeyMismatchError
from .base import Cipher, log2_factorial, register
from .color import rgb_to_ycbcr, ycbcr_to_rgb
from .kernels import ByteMap
from .layout import COLOR_PERMS, LEGACY_SOURCES, dihedral_per_block, from_blocks, positions, to_blocks
from .validation import check_bits, check_permutation


@register("etc")
class EtC(Cipher):
    description = "block scrambling + rotation/flip + NP + colour shuffle (EtC; Kiya lab)"

    @dataclass(frozen=True)
    class Params:
        block_size: int = 4
        grayscale: bool = False
        color_shuffle: str = "permute"

        def __post_init__(self):
            check_int("etc", "block_size", self.block_size)
            check_bool("etc", "grayscale", self.grayscale)
            check_choice("etc", "color_shuffle", self.color_shuffle, ("permute", "legacy_inplace"))
            if self.grayscale and self.color_shuffle != "permute":
                raise ValueError("etc: grayscale-based EtC has no colour shuffle; leave color_shuffle at 'permute'")

    @property
    def invertible(self) -> bool:
        return self.params.color_shuffle == "permute"

    def grid(self, h: int, w: int) -> tuple[int, int, int]:
        """The image the blocks are cut from: [1, h, 3w] YCbCr planes side by side, or [3, h, w]."""
        return (1, h, 3 * w) if self.params.grayscale else (3, h, w)

    def n_blocks(self, h: int, w: int) -> int:
        _, gh, gw = self.grid(h, w)
        return super().n_blocks(gh, gw)

    def derive(self, keys, h, w):
        n = self.n_blocks(h, w)
        comps = {
            "block_perm": keys.stream("block_perm").permutation(n),
            "dihedral": keys.stream("dihedral").below(8, n),
            "np": keys.stream("np").bits(n),
        }
        if not self.params.grayscale:
            comps["color"] = keys.stream("color").below(6, n)
        return comps

    def check_components(self, comps, h, w):
        n = self.n_blocks(h, w)
        names = ("block_perm", "dihedral", "np") + (() if self.params.grayscale else ("color",))
        for name in names:
            if name not in comps:
                raise KeyMismatchError(f"etc key: component {name} is missing")
        check_permutation(np.asarray(comps["block_perm"]), n, f"block_perm ({n} blocks)", "etc")
        check_bits(np.asarray(comps["np"]), (n,), "np", "etc")
        for name, top in (("dihedral", 7), ("color", 5)):
            if name in names and (np.asarray(comps[name]).shape != (n,) or np.asarray(comps[name]).max(initial=0) > top):
                raise KeyMismatchError(f"etc key: {name} must be {n} codes in 0..{top}")

    def compile(self, comps, h, w):
        c, gh, gw = self.grid(h, w)
        blocks = to_blocks(positions(c, gh, gw), self.block_size)[comps["block_perm"]]
        blocks = dihedral_per_block(blocks, comps["dihedral"].astype(np.int64))
        if not self.params.grayscale:
            table = COLOR_PERMS if self.params.color_shuffle == "permute" else LEGACY_SOURCES
            blocks = np.take_along_axis(blocks, table[comps["color"].astype(np.int64)][:, None, None, :], axis=-1)
        mask = np.broadcast_to((255 * comps["np"].astype(np.uint8))[:, None, None, None], blocks.shape)
        return ByteMap.build(from_blocks(blocks, gh, gw).reshape(-1), from_blocks(mask, gh, gw).reshape(-1))

    def key_space_bits(self, image_size=(32, 32)):
        n = self.n_blocks(*image_size)
        per_block = 3 + 1 + (0.0 if self.params.grayscale else float(np.log2(6)))
        return n * per_block + log2_factorial(n)

    # ------------------------------------------------------------------ grayscale layout
    def cipher_shape(self, h, w):
        return self.grid(h, w)

    def plain_size(self, shape):
        c, gh, gw = shape
        if self.params.grayscale and gw % 3:
            raise ImageFormatError(f"etc grayscale: ciphertext width must be 3×(image width), got {gw}")
        return (gh, gw // 3) if self.params.grayscale else (gh, gw)

    def to_cipher_layout(self, x):
        if not self.params.grayscale:
            return x
        return torch.cat(rgb_to_ycbcr(x).split(1, dim=1), dim=3)  # [B, 1, H, 3W]: Y | Cb | Cr

    def from_cipher_layout(self, y):
        if not self.params.grayscale:
            return y
        return ycbcr_to_rgb(self._planes(y))

    @staticmethod
    def _planes(y: torch.Tensor) -> torch.Tensor:
        return torch.cat(y.split(y.shape[-1] // 3, dim=-1), dim=-3)

    def decrypt_planes(self, y: torch.Tensor) -> torch.Tensor:
        """Grayscale EtC: the exact YCbCr planes [..., 3, H, W] (decrypt() converts them to RGB)."""
        if not self.params.grayscale:
            raise ImageFormatError("decrypt_planes is for grayscale-based etc; use decrypt()")
        return self._decrypt(y, None, self._planes)

    def expected_roundtrip(self, x: torch.Tensor) -> torch.Tensor:
        return ycbcr_to_rgb(rgb_to_ycbcr(x)) if self.params.grayscale else x

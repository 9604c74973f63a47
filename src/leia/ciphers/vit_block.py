"""vit_block: block-wise encryption for patch-embedding networks (ViT, ConvMixer).

Qi, MaungMaung, Kinoshita, Kiya (EUSIPCO 2022); MaungMaung & Kiya (2021). With M the network's
patch size: block scrambling K1 (output block i = input block K1[i]); pixel shuffling K2 of the 3M²
(row, column, channel)-flattened values, the SAME for every block (out[j] = in[K2[j]]); optional NP
(`np: true`): XOR 255 at the in-block output positions where K3 = 1, the same for every block.
`scramble: false` leaves block positions alone (pixel shuffling and NP only), the variant whose key
a ConvMixer can absorb.
Because all three act per patch, a plain-trained model can be converted with the key instead of
retrained (model-side key conversion).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_bool, check_int
from ..errors import KeyMismatchError
from .base import Cipher, log2_factorial, register
from .kernels import ByteMap
from .layout import flatten_blocks, positions, unflatten_blocks
from .validation import check_bits, check_permutation


@register("vit_block")
class ViTBlock(Cipher):
    description = "block scrambling + shared pixel shuffle (+NP) for patch embeddings (Kiya lab)"

    @dataclass(frozen=True)
    class Params:
        block_size: int = 16
        np: bool = False
        scramble: bool = True  # false: pixel shuffling (+NP) only, what ConvMixer conversion needs

        def __post_init__(self):
            check_int("vit_block", "block_size", self.block_size)
            check_bool("vit_block", "np", self.np)
            check_bool("vit_block", "scramble", self.scramble)

    @property
    def block_len(self) -> int:
        return 3 * self.block_size**2

    def derive(self, keys, h, w):
        comps = {"pixel_perm": keys.stream("pixel_perm").permutation(self.block_len)}
        if self.params.scramble:
            comps["block_perm"] = keys.stream("block_perm").permutation(self.n_blocks(h, w))
        if self.params.np:
            comps["np"] = keys.stream("np").bits(self.block_len)
        return comps

    def check_components(self, comps, h, w):
        needed = ("pixel_perm",) + (("block_perm",) if self.params.scramble else ()) + (("np",) if self.params.np else ())
        for name in needed:
            if name not in comps:
                raise KeyMismatchError(f"vit_block key: component {name} is missing")
        if self.params.scramble:
            check_permutation(np.asarray(comps["block_perm"]), self.n_blocks(h, w), "block_perm", "vit_block")
        elif "block_perm" in comps:
            raise KeyMismatchError("vit_block key with scramble=false must not carry a block permutation")
        check_permutation(np.asarray(comps["pixel_perm"]), self.block_len, "pixel_perm", "vit_block")
        if self.params.np:
            check_bits(np.asarray(comps["np"]), (self.block_len,), "np", "vit_block")
        elif "np" in comps:
            raise KeyMismatchError("vit_block key with np=false must not carry NP bits")

    def compile(self, comps, h, w):
        m = self.block_size
        blocks = flatten_blocks(positions(3, h, w), m)
        if self.params.scramble:
            blocks = blocks[comps["block_perm"]]
        blocks = blocks[:, comps["pixel_perm"]]
        mask = np.zeros(blocks.shape, dtype=np.uint8)
        if self.params.np:
            mask[:] = 255 * comps["np"].astype(np.uint8)
        return ByteMap.build(unflatten_blocks(blocks, 3, h, w, m).reshape(-1), unflatten_blocks(mask, 3, h, w, m).reshape(-1))

    def key_space_bits(self, image_size=(32, 32)):
        scramble = log2_factorial(self.n_blocks(*image_size)) if self.params.scramble else 0.0
        return scramble + log2_factorial(self.block_len) + (self.block_len if self.params.np else 0)

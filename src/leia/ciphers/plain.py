"""plain: the identity, the baseline row of every table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Cipher, register
from .kernels import ByteMap


@register("plain")
class Plain(Cipher):
    keyed = False
    shape_dependent = False
    description = "identity (no encryption)"

    @dataclass(frozen=True)
    class Params:
        pass

    def derive(self, keys, h, w):
        return {}

    def components(self, h, w):
        return {}

    def compile(self, comps, h, w):
        return ByteMap.build(np.arange(3 * h * w, dtype=np.int64))  # the identity: a copy

    def key_space_bits(self, image_size=(32, 32)):
        return 0.0

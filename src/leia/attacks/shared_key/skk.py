"""skk with one key for every image, from ciphertexts alone.

1. NP of every byte position: the sign pattern of the leading eigenvector of the byte positions'
   correlation over all images (every plain byte correlates positively with every other).
2. Colour order of every pixel: pooled chroma covariance between pixels (`pooled.colour_sync`).
3. Global symmetries by stated priors: the negative (photos average below mid-grey) and the colour
   order (mean red ≥ green ≥ blue). Nothing stays unresolved, but both priors can fail on unusual
   data, so the headline is up to them.
"""

from __future__ import annotations

import numpy as np
import torch

from ...ciphers.layout import COLOR_PERMS
from .. import pooled
from ..base import NotApplicable
from .base import Strategy, register, symmetries


@register("skk")
class SkkStrategy(Strategy):
    priors = "negative: mean below 127.5; colour: mean red >= green >= blue"
    unresolved = "none (the global negative and colour order rest on the priors)"

    def check(self):
        if self.scheme_params.get("color_shuffle") == "legacy_inplace":
            raise NotApplicable("skk with color_shuffle=legacy_inplace duplicates channels; no key decrypts it")
        if self.scheme_params.get("key_mode") == "per_image":
            raise NotApplicable("shared_key needs one key for many images, but skk with key_mode=per_image gives "
                                "every image its own key (use skk_greedy or a learned attack)")

    def estimate(self, y):
        n, _, h, w = y.shape
        shuffle = bool(self.scheme_params.get("color_shuffle", True))
        flipped = pooled.leading_signs(y.reshape(n, -1)).reshape(3, h, w)  # by OUTPUT byte
        z = torch.where(flipped[None], 255 - y, y)
        if z.double().mean() > 127.5:  # prior: photos average below mid-grey
            flipped = ~flipped
            z = 255 - z
        pixels = z.permute(0, 2, 3, 1).reshape(n, h * w, 3)
        codes = torch.zeros(h * w, dtype=torch.long)
        if shuffle:
            codes = pooled.colour_sync(pixels)
            codes = pooled.resolve_colour(codes, pooled.undo_colour(pixels, codes).double().mean((0, 1)))
        # output channel k of a pixel is NP(input channel COLOR_PERMS[code][k]): the NP bit belongs to that input
        src = torch.from_numpy(COLOR_PERMS)[codes].reshape(h, w, 3)
        np_bits = torch.zeros(h, w, 3, dtype=torch.uint8)
        np_bits.scatter_(2, src, flipped.permute(1, 2, 0).to(torch.uint8))
        comps = {"np": np_bits.numpy()}
        if shuffle:
            comps["color"] = codes.reshape(h, w).numpy().astype(np.int64)
        return self.key(comps, h, w)

    def symmetries(self, h, w):
        return symmetries(h, w, mirror=False, colour=bool(self.scheme_params.get("color_shuffle", True)), negative=True)

    def units(self, h, w):
        return torch.arange(h * w).repeat(3)

"""etc (colour-based EtC) from ciphertexts alone, pooled over every image under the key.

1. Tone of every cipher block position: NP from the sign of its luminance's correlation with the
   other positions (`pooled.leading_signs`), colour order from pooled chroma covariance
   (`pooled.colour_sync`). Block means do not depend on the block's orientation or place.
2. Pieces in a common tone: compatibility of every piece pair in 8 × 8 relative orientations,
   summed over all images (`pooled.compatibility`), then the tree assembly (`assembly`).
3. Global symmetries, resolved by stated priors on the mean decrypted image: up versus down and
   rotation (the top half is the brightest), the global negative (photos average below mid-grey),
   the global colour order (mean red ≥ green ≥ blue). The left-right mirror stays unresolved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..assembly import D4, INVERSE, TreeAssembly
from ..base import NotApplicable
from ..blocks import dihedral, to_blocks
from .. import pooled
from .base import STRATEGIES, Strategy, apply_frame, block_units, register, symmetries, top_bottom


@dataclass
class Pieces:
    """Per cipher block: negated (NP), colour code, slot in the frame and the orientation in which it
    appears there (dihedral(block, orientation)); the frame transform the up prior chose."""

    negated: torch.Tensor
    codes: torch.Tensor
    slot: torch.Tensor
    orientation: torch.Tensor
    frame: int
    cost: float


def solve_pieces(blocks: torch.Tensor, rows: int, cols: int, top: int, candidates: int) -> Pieces:
    """Steps 1–3 of the module docstring for pieces blocks [N, P, M, M, C] whose values run 0..top
    (255 for bytes, 15 for the high nibbles of ele): tones, assembly, priors. C = 3 (colour pieces)
    or 1 (single-channel pieces: no colour order to find; codes are all 0)."""
    n, p, m, _, c = blocks.shape
    means = blocks.double().mean((2, 3))
    negated = pooled.leading_signs(means.mean(-1))
    blocks = torch.where(negated[None, :, None, None, None], top - blocks, blocks)
    means = torch.where(negated[None, :, None], top - means, means)
    codes = pooled.colour_sync(means) if c == 3 else torch.zeros(p, dtype=torch.long)
    canonical = pooled.undo_colour(blocks, codes) if c == 3 else blocks
    lr, tb = pooled.compatibility(canonical, D4)
    assembly = TreeAssembly(lr, tb, p, D4, rows, cols, candidates)
    placement = assembly.solve()
    mean_blocks = canonical.double().mean(0)  # [P, M, M, C]
    if mean_blocks.mean() > top / 2:  # prior: photos average below mid-grey (decided first: "up" needs it)
        negated = ~negated
        mean_blocks = top - mean_blocks

    def mean_image(slot, orientation):
        grid = torch.empty_like(mean_blocks)
        grid[slot] = torch.stack([dihedral(mean_blocks[q], int(orientation[q])) for q in range(p)])
        return grid.reshape(rows, cols, m, m, c).permute(4, 0, 2, 1, 3).reshape(c, rows * m, cols * m)

    # up versus down (and rotation): among the frame transforms that keep the frame's shape, the one
    # whose mean decrypted image is brightest at the top
    options = range(D4) if rows == cols else (0, 2, 4, 6)
    frame = max(options, key=lambda g: top_bottom(mean_image(*apply_frame(placement.slot, placement.orientation,
                                                                              g, rows, cols))))
    slot, orientation = apply_frame(placement.slot, placement.orientation, frame, rows, cols)
    if c == 3:
        codes = pooled.resolve_colour(codes, mean_blocks.mean((0, 1, 2)))
    return Pieces(negated, codes, slot, orientation, frame, assembly.total(placement))


@register("etc")
class EtcStrategy(Strategy):
    priors = ("up: top half brightest (also fixes rotation); negative: mean below 127.5; "
              "colour: mean red >= green >= blue")
    unresolved = "left-right mirror of the whole image"

    @classmethod
    def select(cls, params):
        return STRATEGIES.get("etc_gray") if params.get("grayscale") else cls  # etc_gray.py

    def check(self):
        if self.scheme_params.get("color_shuffle") != "permute":
            raise NotApplicable("etc with color_shuffle=legacy_inplace destroys channels; no key decrypts it")

    def estimate(self, y):
        m = int(self.scheme_params["block_size"])
        n, _, h, w = y.shape
        rows, cols = h // m, w // m
        pieces = solve_pieces(to_blocks(y, m), rows, cols, 255, self.params.candidates)
        self.extra = {"assembly_cost": pieces.cost, "frame_transform": pieces.frame}
        comps = {
            "block_perm": pieces.slot.numpy().astype(np.int64),
            "dihedral": INVERSE[pieces.orientation].numpy().astype(np.uint8),
            "np": pieces.negated.numpy().astype(np.uint8),
            "color": pieces.codes.numpy().astype(np.uint8),
        }
        return self.key(comps, h, w)

    def symmetries(self, h, w):
        return symmetries(h, w, mirror=True, colour=True, negative=True)

    def units(self, h, w):
        return block_units(h, w, int(self.scheme_params["block_size"]))

"""vit_block from ciphertexts alone, pooled over every block of every image under the key.

1. The in-block pixel shuffle (and NP mask) every block shares: NP by correlation sign
   (`pooled.leading_signs`), channels by image-level chroma (`pooled.channel_groups`), then
   `jigsaw.estimate_from_moments` on the pooled block moments (pixel triples by optimal assignment,
   layout by matching ρ^distance). It is found up to the block's 8 symmetries.
2. Which of those 8 layouts, and the patch placement: for each common orientation, the pooled
   compatibility of the un-shuffled patches and the tree assembly; the lowest total wins. With
   `scramble: false` patches stay in place, so only the orientation is chosen.
3. Priors: up versus down (top half brightest), the negative (mean below 127.5; with `np`), the
   colour order (mean red ≥ green ≥ blue, inside step 1). The left-right mirror stays unresolved.
"""

from __future__ import annotations

import numpy as np
import torch

from ..assembly import COMPOSE, D4, TreeAssembly
from ..blocks import dihedral, flatten_blocks
from ..jigsaw import block_moments, estimate_from_moments
from .. import pooled
from .base import Strategy, apply_frame, block_units, register, symmetries, top_bottom


@register("vit_block")
class VitBlockStrategy(Strategy):
    priors = "up: top half brightest; negative (np): mean below 127.5; colour: mean red >= green >= blue"

    @property
    def scramble(self) -> bool:
        return bool(self.scheme_params.get("scramble", True))

    @property
    def unresolved(self) -> str:
        return "left-right mirror of the whole image" if self.scramble else "none"

    def estimate(self, y):
        m = int(self.scheme_params["block_size"])
        np_mask = bool(self.scheme_params.get("np", False))
        n, _, h, w = y.shape
        rows, cols = h // m, w // m
        flat = flatten_blocks(y, m)  # [N, P, 3M²]
        flips = pooled.leading_signs(flat.reshape(-1, 3 * m * m)) if np_mask else torch.zeros(3 * m * m, dtype=torch.bool)
        if np_mask and torch.where(flips, 255 - flat, flat).double().mean() > 127.5:
            flips = ~flips  # prior: photos average below mid-grey
        mask = flips.to(torch.uint8) * 255
        signed = flat ^ mask
        moments = None
        for s in range(0, n, 256):
            part = block_moments(signed[s : s + 256].reshape(-1, 3 * m * m))
            moments = part if moments is None else tuple(a + b for a, b in zip(moments, part))
        src, _ = estimate_from_moments(*moments, m, False, self.params.restarts, pooled.channel_groups(signed))
        canonical = signed[..., src].reshape(n, rows * cols, m, m, 3)
        best = None
        for a in range(D4):
            view = dihedral(canonical, a)
            if self.scramble:
                lr, tb = pooled.compatibility(view, 1)
                assembly = TreeAssembly(lr, tb, rows * cols, 1, rows, cols, self.params.candidates)
                placement = assembly.solve()
                slot, cost = placement.slot, assembly.total(placement)
            else:
                slot = torch.arange(rows * cols)
                cost = pooled.in_place_cost(view, rows, cols)
            if best is None or cost < best[0]:
                best = (cost, a, slot)
        cost, a, slot = best
        frame = 0
        if self.scramble:
            mean_blocks = dihedral(canonical.double().mean(0), a)

            def top(g):
                moved, _ = apply_frame(slot, torch.zeros(len(slot), dtype=torch.long), g, rows, cols)
                grid = torch.empty_like(mean_blocks)
                grid[moved] = dihedral(mean_blocks, g)
                return top_bottom(grid.reshape(rows, cols, m, m, 3).permute(4, 0, 2, 1, 3).reshape(3, h, w))

            frame = max(range(D4) if rows == cols else (0, 2, 4, 6), key=top)
            slot, _ = apply_frame(slot, torch.zeros(len(slot), dtype=torch.long), frame, rows, cols)
            a = int(COMPOSE[frame, a])
        # plain in-block position q reads canonical position layout[q], i.e. cipher position src[layout[q]]
        layout = dihedral(torch.arange(3 * m * m).reshape(m, m, 3), a).reshape(-1)
        reads = src[layout]
        pixel_perm = torch.empty_like(reads)
        pixel_perm[reads] = torch.arange(len(reads))  # cipher position j holds plain position pixel_perm[j]
        comps = {"pixel_perm": pixel_perm.numpy().astype(np.int64)}
        if self.scramble:
            comps["block_perm"] = slot.numpy().astype(np.int64)
        if np_mask:
            comps["np"] = flips.numpy().astype(np.uint8)
        self.extra = {"assembly_cost": float(cost), "common_orientation": int(a), "frame_transform": frame}
        return self.key(comps, h, w)

    def symmetries(self, h, w):
        return symmetries(h, w, mirror=self.scramble, colour=True, negative=bool(self.scheme_params.get("np")))

    def units(self, h, w):
        return block_units(h, w, int(self.scheme_params["block_size"]))

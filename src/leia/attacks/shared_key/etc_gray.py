"""Grayscale-based etc (Chuman et al.) from ciphertexts alone, pooled over every image under the key.

The cipher cuts blocks from the Y, Cb and Cr planes laid side by side as one single-channel image,
so a block may land in any plane, and there is no colour order, only NP and the 8 orientations.
1. Luma or chroma: a Y block's mean varies over images several times more than a chroma block's
   (std of block means over CIFAR-10: 46–67 for Y, 11–16 for Cb and Cr). The P most variable
   pieces are Y.
2. The Y pieces are a single-channel etc puzzle (`etc.solve_pieces`): NP signs, tree assembly,
   priors (up: the top half brightest; negative: mean below mid-grey).
3. The chroma pieces: NP signs by `pooled.leading_signs` (consistent within each plane; a plane's
   own sign is step 5's), then one tree assembly of all of them in a frame two planes wide. Pieces
   of one plane fit each other far better than pieces of the other, so the frame's halves are the
   planes (clean from 30 CIFAR-10 ciphertexts). Each plane is then assembled again on its own.
4. Each half's turn (dihedral) relative to Y: chroma edges lie on luma edges, so the squared cosine
   between a piece's in-block detail and its Y slot's, summed over images, is largest in the right
   frame.
5. Which plane is Cb and which Cr, and each one's sign relative to Y: the planes came from 8-bit
   RGB, so decoded colours must lie in the RGB cube; the option with the least excess wins.
Global symmetries: the left-right mirror of the whole image (unresolved) and the negative of all
three planes (the RGB negative up to rounding, which stays in the cube; resolved by the Y prior).
"""

from __future__ import annotations

import numpy as np
import torch

from ...ciphers.color import rgb_to_ycbcr, ycbcr_to_rgb
from ...ciphers.layout import positions
from .. import pooled
from ..assembly import D4, INVERSE, TreeAssembly
from ..blocks import dihedral, to_blocks
from .base import Strategy, Symmetry, apply_frame, block_units, register
from .etc import solve_pieces


def orient(pieces: torch.Tensor, orientation: torch.Tensor) -> torch.Tensor:
    """pieces [N, K, M, M] -> each piece k as dihedral(piece, orientation[k])."""
    every = torch.stack([dihedral(pieces[..., None], g)[..., 0] for g in range(D4)], 2)  # [N, K, 8, M, M]
    return every[:, torch.arange(pieces.shape[1]), orientation]


def _detail(x: torch.Tensor) -> torch.Tensor:
    """In-block detail [N, K, M²], unit length per image (a flat block contributes little)."""
    d = x.float().flatten(-2)
    d = d - d.mean(-1, keepdim=True)
    return d / (d.norm(dim=-1, keepdim=True) + 2.0)


def luma_agreement(chroma: torch.Tensor, luma: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """Chroma pieces [N, K, M, M] and the assembled Y by slot [N, P, M, M] -> [K, 8, P]: the squared
    cosine between piece k's detail in orientation g and slot s's Y detail, summed over images
    (sign-free, so NP does not matter)."""
    n, k = chroma.shape[:2]
    every = torch.stack([dihedral(chroma[..., None], g)[..., 0] for g in range(D4)], 2)  # [N, K, 8, M, M]
    score = torch.zeros(k * D4, luma.shape[1], dtype=torch.double)
    for s in range(0, n, chunk):
        dc, dy = _detail(every[s : s + chunk].flatten(1, 2)), _detail(luma[s : s + chunk])
        score += (torch.bmm(dc, dy.transpose(1, 2)) ** 2).sum(0).double()
    return score.reshape(k, D4, -1)


def assemble_chroma(tone: torch.Tensor, agreement: torch.Tensor, rows: int, cols: int, candidates: int):
    """Steps 3–4: chroma pieces [N, 2P, M, M] in their planes' common tones -> (slot, orientation,
    second plane) per piece. A tree assembly in a frame two planes wide splits the planes (its
    halves); each plane is then assembled on its own in a plane-sized frame (the wide frame does
    not hold a plane to its shape) and turned to agree best with Y."""
    p = rows * cols
    lr, tb = pooled.compatibility(tone[..., None], D4)
    wide = TreeAssembly(lr, tb, 2 * p, D4, rows, 2 * cols, candidates).solve()
    second = wide.slot % (2 * cols) >= cols
    slot, orientation = torch.empty(2 * p, dtype=torch.long), torch.empty(2 * p, dtype=torch.long)
    frames = range(D4) if rows == cols else (0, 2, 4, 6)  # those that keep a plane's shape
    for half in (~second, second):
        pieces = torch.nonzero(half)[:, 0]
        if len(pieces) != p:  # the wide frame's halves hold p pieces each by construction
            raise AssertionError(f"a chroma plane of {len(pieces)} pieces, expected {p}")
        po = (pieces[:, None] * D4 + torch.arange(D4)).reshape(-1)
        own = TreeAssembly(lr[po][:, po], tb[po][:, po], p, D4, rows, cols, candidates).solve()
        turned = [apply_frame(own.slot, own.orientation, g, rows, cols) for g in frames]
        slot[half], orientation[half] = max(turned, key=lambda t: float(agreement[pieces, t[1], t[0]].sum()))
    return slot, orientation, second


def gamut_excess(y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor) -> float:
    """How far the colours decoded from planes [N, H, W] (floats 0..255) leave the RGB cube (JPEG's
    full-range BT.601), summed."""
    cb, cr = cb - 128, cr - 128
    rgb = (y + 1.402 * cr, y - 0.34414 * cb - 0.71414 * cr, y + 1.772 * cb)
    return sum(float((c - 255).clamp_min(0).sum() + (-c).clamp_min(0).sum()) for c in rgb)


def _plane(pieces: torch.Tensor, slot: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Pieces [N, P, M, M] in their slots -> plane [N, H, W]."""
    n, p, m, _ = pieces.shape
    grid = torch.empty_like(pieces)
    grid[:, slot] = pieces
    return grid.reshape(n, rows, cols, m, m).permute(0, 1, 3, 2, 4).reshape(n, rows * m, cols * m)


@register("etc_gray")
class GrayEtcStrategy(Strategy):
    priors = ("up: top half of Y brightest (also fixes rotation); negative: mean Y below 127.5; "
              "which plane is Cb and each chroma plane's sign: decoded colours inside the RGB cube")
    unresolved = "left-right mirror of the whole image"

    def estimate(self, y):
        m = int(self.scheme_params["block_size"])
        n, _, h, w3 = y.shape
        rows, cols = h // m, w3 // 3 // m
        p = rows * cols
        blocks = to_blocks(y, m)[..., 0]  # [N, 3P, M, M]
        order = blocks.double().mean((2, 3)).std(0).argsort(descending=True)
        luma, chroma = order[:p].sort().values, order[p:].sort().values

        ypieces = solve_pieces(blocks[:, luma, ..., None], rows, cols, 255, self.params.candidates)
        ytone = torch.where(ypieces.negated[None, :, None, None], 255 - blocks[:, luma], blocks[:, luma])
        yslots = torch.empty(n, p, m, m, dtype=torch.uint8)
        yslots[:, ypieces.slot] = orient(ytone, ypieces.orientation)

        negated = pooled.leading_signs(blocks[:, chroma].double().mean((2, 3)))
        tone = torch.where(negated[None, :, None, None], 255 - blocks[:, chroma], blocks[:, chroma])
        agreement = luma_agreement(blocks[:, chroma], yslots)
        slot, orientation, second = assemble_chroma(tone, agreement, rows, cols, self.params.candidates)
        oriented = orient(tone, orientation).float()
        planes = [_plane(oriented[:, half], slot[half], rows, cols) for half in (~second, second)]
        luma_plane = _plane(yslots.float(), torch.arange(p), rows, cols)
        options = [(swap, sa, sb) for swap in (0, 1) for sa in (0, 1) for sb in (0, 1)]

        def excess(option):
            swap, sa, sb = option
            a, b = (255 - planes[0] if sa else planes[0]), (255 - planes[1] if sb else planes[1])
            return gamut_excess(luma_plane, *((b, a) if swap else (a, b)))

        swap, sa, sb = min(options, key=excess)
        negated ^= torch.where(second, bool(sb), bool(sa))
        plane = 1 + (second ^ bool(swap)).long()  # 1: Cb, 2: Cr

        where = torch.empty(3 * p, dtype=torch.long)  # cipher block -> plain block of the [H, 3W] grid
        turn = torch.empty(3 * p, dtype=torch.long)
        sign = torch.empty(3 * p, dtype=torch.bool)
        slots = torch.cat([ypieces.slot, slot])
        where[torch.cat([luma, chroma])] = slots // cols * 3 * cols + torch.cat([torch.zeros(p, dtype=torch.long), plane]) * cols + slots % cols
        turn[torch.cat([luma, chroma])] = torch.cat([ypieces.orientation, orientation])
        sign[torch.cat([luma, chroma])] = torch.cat([ypieces.negated, negated])
        self.extra = {"assembly_cost": ypieces.cost, "frame_transform": ypieces.frame, "gamut_excess": excess((swap, sa, sb))}
        comps = {
            "block_perm": where.numpy().astype(np.int64),
            "dihedral": INVERSE[turn].numpy().astype(np.uint8),
            "np": sign.numpy().astype(np.uint8),
        }
        return self.key(comps, h, w3 // 3)

    def symmetries(self, h, w):
        """Over the plane layout [1, H, 3W] (Y | Cb | Cr): the mirror flips every plane in place."""
        pos = positions(1, h, 3 * w)
        out = []
        for mirror in (False, True):
            index = pos.reshape(h, 3, w)[..., ::-1].reshape(-1) if mirror else pos.reshape(-1)
            for n in (0, 255):
                name = "+".join(s for s, on in (("mirror", mirror), ("negative", n)) if on) or "identity"
                out.append(Symmetry(name, np.ascontiguousarray(index), np.full(index.size, n, dtype=np.uint8)))
        return out

    def align(self, images, g):
        """Decrypted RGB images -> planes -> undo g -> RGB (the colour conversion rounds, as decryption does)."""
        planes = torch.cat(rgb_to_ycbcr(images).unbind(1), dim=-1)[:, None]
        planes = g.inverse().apply(planes)[:, 0]
        return ycbcr_to_rgb(torch.stack(planes.split(planes.shape[-1] // 3, dim=-1), 1))

    def units(self, h, w):
        return block_units(h, 3 * w, int(self.scheme_params["block_size"]), channels=1)

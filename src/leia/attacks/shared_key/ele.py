"""ele (Extended LE) from ciphertexts alone: every block position has its own LE key, then the
blocks are scrambled, so statistics pool over the images at each cipher block position.

1. Per cipher block (all blocks at once where it is tensor work): the 48 output nibbles that carry
   plain high nibbles (strongly correlated ones), their signs (`pooled.leading_signs` inside each
   block, then across blocks by luminance), their channels (`channel_labels`: chroma shared with the
   other blocks) and their layout (`jigsaw.estimate_from_moments`): a 4-bit piece, known up to its
   orientation (and, until step 2 checks them, its NP and colour order).
2. Those pieces are an etc puzzle: tones, tree assembly and priors (`etc.solve_pieces`).
3. Low nibbles (`low_nibbles: predict`): per block, each remaining output goes to the plain low
   nibble whose neighbour prediction from the assembled 4-bit images it correlates with best.
4. The key: P per input block position and Q; flips derived from P (`flip: derived`) or solved
   from the estimated signs along P's cycles (`flip: independent`). Derived flips also settle the
   whole-image mirror: only one of the two assemblies' P predicts the signs measured in step 1.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..blocks import dihedral, flatten_blocks, to_nibbles
from ..jigsaw import block_moments, estimate_from_moments
from .. import pooled
from .base import Strategy, apply_frame, block_units, register, symmetries
from .etc import solve_pieces
from .tanaka import assign_low, flips_from_signs, low_targets


def channel_labels(values: torch.Tensor, iterations: int = 30) -> torch.Tensor:
    """Colour channel (0 red, 1 green, 2 blue) of every high-nibble position of every block, from
    values [N, P, d] in true sign. A position minus its block's mean carries its pixel's detail and
    its channel's chroma; the chroma is the image's, shared by every block, the detail is not. So
    each block's positions are labelled (M² per channel, by optimal assignment) by their covariance
    with the other blocks' channel sums, from a start by mean, until no label changes; then the
    channels are ordered by mean (prior: red >= green >= blue)."""
    from scipy.optimize import linear_sum_assignment

    n, p, d = values.shape
    k = d // 3
    r = values.double() - values.double().mean(-1, keepdim=True)
    r = r - r.mean(0)
    labels = torch.empty(p, d, dtype=torch.long)
    labels.scatter_(1, values.double().mean(0).argsort(1, descending=True), (torch.arange(d) // k).expand(p, d))
    for _ in range(iterations):
        own = torch.einsum("npo,poc->npc", r, torch.nn.functional.one_hot(labels, 3).double())
        score = torch.einsum("npo,npc->poc", r, own.sum(1, keepdim=True) - own)  # others' channel sums
        new = torch.empty_like(labels)
        for i in range(p):  # a loop over pieces
            rows, cols = linear_sum_assignment(-score[i].repeat_interleave(k, 1).numpy())
            new[i, torch.from_numpy(rows)] = torch.from_numpy(cols // k)
        if torch.equal(new, labels):
            break
        labels = new
    means = torch.stack([values.double().mean(0)[labels == c].mean() for c in range(3)])
    rank = torch.empty(3, dtype=torch.long)
    rank[means.argsort(descending=True)] = torch.arange(3)
    return rank[labels]


MIRROR = 4  # dihedral code of a left-right mirror


def _sign_agreement(keys: torch.Tensor, negated: torch.Tensor, d: int) -> float:
    """How many measured signs of high outputs the derived flips of these keys predict (F = P > d,
    net flip F ^ F[P]; unplaced entries, the low nibbles, have F = 0 whatever they turn out to be)."""
    f = keys > d
    placed = keys >= 0
    predicted = f ^ torch.gather(f, 1, keys.clamp_min(0))
    return float(((predicted == negated) & placed).sum())


@register("ele")
class EleStrategy(Strategy):
    priors = ("up: top half brightest; negative: mean below mid-grey; colour: mean red >= green >= blue "
              "(on the 4-bit images)")

    def estimate(self, y):
        m = int(self.scheme_params["block_size"])
        d = 3 * m * m
        n, _, h, w = y.shape
        rows, cols = h // m, w // m
        p = rows * cols
        nib = to_nibbles(flatten_blocks(y, m))  # [N, P, 2d]
        x = nib.double() - nib.double().mean(0)
        cov = torch.einsum("npa,npb->pab", x, x)
        std = cov.diagonal(dim1=1, dim2=2).clamp_min(1e-12).sqrt()
        strength = (cov / std[:, :, None] / std[:, None, :]).abs().sum(2)  # [P, 2d] (diagonal adds 1 to all)
        high = strength.argsort(1, descending=True)[:, :d].sort(1).values  # [P, d]
        low = strength.argsort(1, descending=True)[:, d:].sort(1).values
        values = torch.gather(nib, 2, high[None].expand(n, -1, -1))  # [N, P, d] high-nibble outputs
        flips = torch.stack([pooled.leading_signs(values[:, i]) for i in range(p)])  # within each block
        block_negated = pooled.leading_signs(torch.where(flips, 15 - values, values).double().mean(-1))
        flips ^= block_negated[:, None]
        signed = torch.where(flips, 15 - values, values)
        if signed.double().mean() > 7.5:  # prior: photos average below mid-grey
            flips, signed = ~flips, 15 - signed
        labels = channel_labels(signed)
        layout = []
        canonical = torch.empty(n, p, d, dtype=torch.uint8)
        for i in range(p):  # a loop over pieces: each block position has its own key
            groups = tuple(torch.nonzero(labels[i] == c).flatten() for c in range(3))
            src, _ = estimate_from_moments(*block_moments(signed[:, i]), m, False, self.params.restarts, groups)
            layout.append(src)
            canonical[:, i] = signed[:, i, src]
        pieces = solve_pieces(canonical.reshape(n, p, m, m, 3), rows, cols, 15, self.params.candidates)
        keys, negated = self._high_keys(pieces, high, layout, flips, m)
        if self.scheme_params.get("flip") != "independent":
            # Derived flips follow from P, so only the right assembly's P explains the signs measured in
            # step 1: they tell the whole-image mirror apart, which no image statistic can.
            slot, orientation = apply_frame(pieces.slot, pieces.orientation, MIRROR, rows, cols)
            mirrored = dataclasses.replace(pieces, slot=slot, orientation=orientation)
            other = self._high_keys(mirrored, high, layout, flips, m)
            if _sign_agreement(*other, d) > _sign_agreement(keys, negated, d):
                pieces, (keys, negated) = mirrored, other
        if self.params.low_nibbles == "predict":
            plain_high = self._plain_high(canonical, pieces, m, rows, cols)
            targets = low_targets(plain_high, m)  # [N, P (input positions), d]
            for i in range(p):
                b = int(pieces.slot[i])
                slot, neg = assign_low(nib[:, i, low[i]], targets[:, b])
                keys[b, low[i]] = slot
                negated[b, low[i]] = neg
        else:  # unplaced: low nibbles in output order
            for i in range(p):
                keys[int(pieces.slot[i]), low[i]] = torch.arange(d)
        comps = {"P": keys.numpy().astype(np.int64), "Q": pieces.slot.numpy().astype(np.int64)}
        if self.scheme_params.get("flip") == "independent":
            comps["F"] = np.stack([flips_from_signs(comps["P"][b], negated[b].numpy()) for b in range(p)])
        self.extra = {"assembly_cost": pieces.cost, "frame_transform": pieces.frame}
        return self.key(comps, h, w)

    @staticmethod
    def _high_keys(pieces, high, layout, flips, m):
        """The high-nibble part of every block key (-1 elsewhere) and the measured sign of every
        high output, by INPUT block position, for an assembly."""
        p, d = high.shape
        # plain in-block position q of piece i reads canonical position reads[i, q]
        index = torch.arange(d).reshape(1, 1, m, m, 3).expand(1, p, m, m, 3)
        toned = pooled.undo_colour(index, pieces.codes)[0]  # [P, M, M, 3]
        keys = torch.full((p, 2 * d), -1, dtype=torch.long)
        negated = torch.zeros(p, 2 * d, dtype=torch.bool)
        for i in range(p):  # a loop over pieces
            b = int(pieces.slot[i])
            reads = dihedral(toned[i], int(pieces.orientation[i])).reshape(-1)
            keys[b, high[i][layout[i][reads]]] = d + torch.arange(d)
            negated[b, high[i]] = flips[i] ^ bool(pieces.negated[i])
        return keys, negated

    @staticmethod
    def _plain_high(canonical, pieces, m, rows, cols) -> torch.Tensor:
        """The assembled plain high nibbles [N, 3, H, W] of every image."""
        n, p, _ = canonical.shape
        blocks = canonical.reshape(n, p, m, m, 3)
        blocks = torch.where(pieces.negated[None, :, None, None, None], 15 - blocks, blocks)
        blocks = pooled.undo_colour(blocks, pieces.codes)
        placed = torch.empty_like(blocks)
        for g in range(8):  # the pieces of each orientation at once
            which = torch.nonzero(pieces.orientation == g).flatten()
            if len(which):
                placed[:, pieces.slot[which]] = dihedral(blocks[:, which], g)
        return placed.reshape(n, rows, cols, m, m, 3).permute(0, 5, 1, 3, 2, 4).reshape(n, 3, rows * m, cols * m)

    @property
    def unresolved(self) -> str:
        if self.scheme_params.get("flip") == "independent":
            return "left-right mirror of the whole image"
        return "none (derived flips, which follow from P, tell the mirror apart)"

    def symmetries(self, h, w):
        return symmetries(h, w, mirror=True, colour=True, negative=self.scheme_params.get("flip") == "independent")

    def units(self, h, w):
        """Each block's high half and low half (plain nibbles: low nibbles first, then high)."""
        blocks = block_units(h, w, int(self.scheme_params["block_size"]))
        return torch.cat([2 * blocks, 2 * blocks + 1])

    def groups(self, h, w):
        halves = torch.arange((h // int(self.scheme_params["block_size"])) * (w // int(self.scheme_params["block_size"])) * 2)
        return {"high_nibbles": halves % 2 == 1, "low_nibbles": halves % 2 == 0}

"""tanaka (LE) from ciphertexts alone, pooled over every block of every image (one key for all).

1. Which output nibbles carry plain HIGH nibbles: those strongly correlated with the others (a
   plain high nibble is a 4-bit image; low nibbles are nearly noise).
2. Their arrangement, as a 48-value "block" shared by every block: `jigsaw.estimate_from_moments`
   (signs, channels by mean, pixel triples, layout), up to the block's 8 symmetries; the one whose
   4-bit blocks fit their real neighbours best (block positions are not keyed) is kept.
3. Low nibbles (`low_nibbles: predict`): each remaining output goes to the plain low nibble whose
   neighbour prediction (from the 4-bit image) it correlates with best, by optimal assignment.
4. The key is the nibble permutation P. With `flip: derived` the flips follow from P (F = P > d);
   with `flip: independent` they are solved from the estimated signs along P's cycles.
Priors: the colour order (mean red ≥ green ≥ blue) and, for independent flips, the negative (mean
below mid-grey). Block positions break every geometric symmetry.
"""

from __future__ import annotations

import numpy as np
import torch

from ..assembly import D4
from ..blocks import dihedral, flatten_blocks, to_nibbles
from ..jigsaw import block_moments, estimate_from_moments
from .. import pooled
from .base import Strategy, register, symmetries


def low_targets(high: torch.Tensor, m: int) -> torch.Tensor:
    """What each plain low nibble should roughly be, from the plain high nibbles [N, 3, H, W] alone:
    the 4-neighbour mean of the full values (16·high + 7.5) minus 16·high. Returns [N, P, 3M²]."""
    v = 16 * high.double() + 7.5
    pad = torch.nn.functional.pad(v, (1, 1, 1, 1), mode="replicate")
    predicted = (pad[..., :-2, 1:-1] + pad[..., 2:, 1:-1] + pad[..., 1:-1, :-2] + pad[..., 1:-1, 2:]) / 4
    return flatten_blocks(predicted - 16 * high.double(), m)


def assign_low(candidates: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """candidates [S, K] unplaced output nibbles, target [S, d] (`low_targets`, same samples): each
    output goes to the byte whose predicted low part it correlates with most (optimal assignment,
    sign-free). Returns (byte position in the block [K], negated [K])."""
    from scipy.optimize import linear_sum_assignment

    a = candidates.double() - candidates.double().mean(0)
    b = target - target.mean(0)
    corr = (a.T @ b) / (a.norm(dim=0)[:, None] * b.norm(dim=0)[None, :]).clamp_min(1e-12)  # [K, d]
    rows, cols = linear_sum_assignment(-corr.abs().numpy())
    slot = torch.from_numpy(cols[np.argsort(rows)]).long()
    return slot, corr.gather(1, slot[:, None])[:, 0] < 0


def flips_from_signs(p: np.ndarray, negated: np.ndarray) -> np.ndarray:
    """F with F[i] ^ F[p[i]] = negated[i] wherever P's cycles allow (one entry per odd cycle cannot)."""
    f = np.full(len(p), -1)
    for start in range(len(p)):
        if f[start] >= 0:
            continue
        f[start] = 0
        i = start
        while f[p[i]] < 0:
            f[p[i]] = f[i] ^ int(negated[i])
            i = p[i]
    return f.astype(np.uint8)


@register("tanaka")
class TanakaStrategy(Strategy):
    priors = "colour: mean red >= green >= blue; negative (flip=independent): mean below 127.5"
    unresolved = "none"

    def estimate(self, y):
        m = int(self.scheme_params["block_size"])
        d = 3 * m * m
        n, _, h, w = y.shape
        rows, cols = h // m, w // m
        nib = to_nibbles(flatten_blocks(y, m))  # [N, P, 2d] output nibbles
        samples = nib.reshape(-1, 2 * d)
        corr = pooled.correlation(samples)
        strength = corr.abs().fill_diagonal_(0).sum(1)
        high = torch.argsort(strength, descending=True)[:d].sort().values  # outputs carrying high nibbles
        low = torch.from_numpy(np.setdiff1d(np.arange(2 * d), high.numpy()))
        flips = pooled.leading_signs(samples[:, high])
        signed = torch.where(flips, 15 - nib[..., high], nib[..., high])
        if signed.double().mean() > 7.5:
            flips, signed = ~flips, 15 - signed  # prior: photos average below mid-grey
        groups = pooled.channel_groups(signed)
        src, _ = estimate_from_moments(*block_moments(signed.reshape(-1, d)), m, False, self.params.restarts, groups)
        values = torch.where(flips, 15 - nib[..., high], nib[..., high])[..., src]  # [N, P, d] canonical
        blocks = values.reshape(n, rows * cols, m, m, 3)
        costs = [pooled.in_place_cost(dihedral(blocks, a), rows, cols) for a in range(D4)]
        a = int(np.argmin(costs))
        layout = dihedral(torch.arange(d).reshape(m, m, 3), a).reshape(-1)
        out_of = high[src[layout]]  # plain high nibble q (byte q of the block) is output nibble out_of[q]
        negated = torch.zeros(2 * d, dtype=torch.bool)
        negated[high] = flips
        p = torch.full((2 * d,), -1, dtype=torch.long)
        p[out_of] = d + torch.arange(d)
        plain_high = _image(dihedral(blocks, a), rows, cols)  # [N, 3, H, W] 4-bit image
        if self.params.low_nibbles == "predict":
            slot, neg_low = assign_low(nib[..., low].reshape(-1, len(low)), low_targets(plain_high, m).reshape(-1, d))
            p[low] = slot
            negated[low] = neg_low
        else:  # unplaced: low nibbles in output order
            p[low] = torch.arange(d)
        comps = {"P": p.numpy().astype(np.int64)}
        if self.scheme_params.get("flip") == "independent":
            comps["F"] = flips_from_signs(comps["P"], negated.numpy())
        self.extra = {"block_orientation_costs_ratio": float(sorted(costs)[1] / max(sorted(costs)[0], 1e-12))}
        return self.key(comps, 0, 0)

    def key(self, components, h, w):
        from ...ciphers.keyfile import Key

        return Key(scheme="tanaka", params=self.scheme_params, components=components)

    def symmetries(self, h, w):
        return symmetries(h, w, mirror=False, colour=True, negative=self.scheme_params.get("flip") == "independent")

    def units(self, h, w):
        m = int(self.scheme_params["block_size"])
        c = torch.arange(3)[:, None, None]
        r = torch.arange(h)[None, :, None] % m
        q = torch.arange(w)[None, None, :] % m
        entry = ((r * m + q) * 3 + c).reshape(-1)
        return torch.cat([entry, entry + 3 * m * m])

    def groups(self, h, w):
        d = 3 * int(self.scheme_params["block_size"]) ** 2
        return {"high_nibbles": torch.arange(2 * d) >= d, "low_nibbles": torch.arange(2 * d) < d}


def _image(blocks: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    n, p, m, _, c = blocks.shape
    return blocks.reshape(n, rows, cols, m, m, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, rows * m, cols * m)

"""Statistics pooled over many ciphertexts under one key: the evidence shared-key attacks use.

One ciphertext says little about a key; a data set says much more, because the key is the same in
every image while the images differ. Everything here is batched tensor code over all images at
once (or in chunks of images, to bound memory); loops run over pieces or candidate codes, never
over images or pixels.
- `leading_signs`: which units are negated (NP), from the sign pattern of the leading eigenvector of
  their correlation (natural image units correlate positively, NP negates a unit's deviations).
- `colour_sync`: each unit's colour order relative to the others, from pooled chroma covariance
  (a blue image is blue in every block), by coordinate ascent over the 6 orders.
- `channel_groups`: which in-block positions share a colour channel, from image-level chroma (the
  same key in every block, so per image the blocks average to its colour cast).
- `compatibility`: prediction-based squared edge dissimilarity of every piece-orientation pair,
  summed over all images (decomposes into Gram matrices, so it is a few matrix products).
"""

from __future__ import annotations

import torch

from ..ciphers.layout import COLOR_PERMS, COLOR_PERMS_INV
from .blocks import dihedral

_INV = torch.from_numpy(COLOR_PERMS_INV)


def correlation(values: torch.Tensor) -> torch.Tensor:
    """Correlation matrix [U, U] of units over images: values [N, U]."""
    v = values.double()
    v = v - v.mean(0)
    cov = v.T @ v
    std = cov.diagonal().clamp_min(1e-12).sqrt()
    return cov / std[:, None] / std[None, :]


def leading_signs(values: torch.Tensor, iterations: int = 200) -> torch.Tensor:
    """Units [N, U] -> bool [U]: True where a unit is negated relative to the majority. The global
    sign is left to the caller's prior (see `resolve_np`)."""
    corr = correlation(values)
    vec = corr.sum(1)  # power iteration from the all-positive start
    for _ in range(iterations):
        nxt = corr @ vec
        nxt = nxt / nxt.norm().clamp_min(1e-30)
        if torch.allclose(nxt, vec, atol=1e-12):
            break
        vec = nxt
    negative = vec < 0
    return negative if negative.sum() <= len(vec) / 2 else ~negative


def colour_sync(values: torch.Tensor, iterations: int = 50) -> torch.Tensor:
    """values [N, U, 3] (NP already undone) -> codes [U]: unit u's channels in a common order are
    values[..., u, COLOR_PERMS_INV[codes[u]]] (one global order left open, see `resolve_colour`).
    Maximises the summed chroma covariance between all units by coordinate ascent."""
    v = values.double()
    u = v - v.mean(-1, keepdim=True)
    u = u - u.mean(0)
    cand = u[:, :, _INV]  # [N, U, 6, 3]: each unit under each candidate un-permutation
    codes = torch.zeros(u.shape[1], dtype=torch.long)
    units = torch.arange(u.shape[1])
    for _ in range(iterations):
        chosen = cand[:, units, codes]  # [N, U, 3]
        total = chosen.sum(1)
        score = torch.einsum("nusc,nc->us", cand, total) - torch.einsum("nusc,nuc->us", cand, chosen)
        new = score.argmax(1)
        if torch.equal(new, codes):
            break
        codes = new
    return codes


def undo_colour(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Put units into the common colour order: x [N, U, ..., 3] (blocks [N, U, M, M, 3] or [N, U, 3])."""
    idx = _INV.to(x.device)[codes]  # [U, 3]
    shape = [1] * x.dim()
    shape[1], shape[-1] = len(codes), 3
    return torch.gather(x, -1, idx.reshape(shape).expand_as(x))


def code_of(inverse_rows: torch.Tensor) -> torch.Tensor:
    """Colour codes s with COLOR_PERMS_INV[s] == row, for rows [U, 3]."""
    match = (inverse_rows[:, None, :] == _INV[None]).all(-1)
    return match.float().argmax(1)


def resolve_colour(codes: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Prior: in natural photos the mean of red ≥ green ≥ blue. `means` [3] are the channel means of
    the common order; returns codes whose common order is sorted that way."""
    order = torch.argsort(means, descending=True)
    return code_of(_INV[codes][:, order])


def compatibility(blocks: torch.Tensor, orientations: int, chunk_values: int = 2**24):
    """Pooled prediction-based squared dissimilarity of pieces blocks [N, P, M, M, C] (same piece
    index = same key slot in every image) in `orientations` dihedral orientations.
    Returns (lr, tb) [P·O, P·O]: lr[x, y] = Σ_images ‖(2e−i)_x^right − e_y^left‖² + ‖e_x^right −
    (2e−i)_y^left‖², tb likewise for x above y."""
    n, p, m, _, c = blocks.shape
    po = p * orientations
    step = max(1, chunk_values // (po * m * m * c))
    sums = {k: torch.zeros(po, dtype=torch.double) for k in "RLBT"}
    gram = {"lr": torch.zeros(po, po, dtype=torch.double), "tb": torch.zeros(po, po, dtype=torch.double)}
    for s in range(0, n, step):
        z = blocks[s : s + step].float()
        o = torch.stack([dihedral(z, a) for a in range(orientations)], 2).reshape(len(z), po, m, m, c)
        f = {
            "R": torch.cat([2 * o[:, :, :, -1] - o[:, :, :, -2], o[:, :, :, -1]], 2),
            "L": torch.cat([o[:, :, :, 0], 2 * o[:, :, :, 0] - o[:, :, :, 1]], 2),
            "B": torch.cat([2 * o[:, :, -1] - o[:, :, -2], o[:, :, -1]], 2),
            "T": torch.cat([o[:, :, 0], 2 * o[:, :, 0] - o[:, :, 1]], 2),
        }
        f = {k: v.transpose(0, 1).reshape(po, -1) for k, v in f.items()}
        for k, v in f.items():
            sums[k] += (v.double() ** 2).sum(1)
        gram["lr"] += (f["R"] @ f["L"].T).double()
        gram["tb"] += (f["B"] @ f["T"].T).double()
    lr = sums["R"][:, None] + sums["L"][None, :] - 2 * gram["lr"]
    tb = sums["B"][:, None] + sums["T"][None, :] - 2 * gram["tb"]
    return lr.clamp_min(0), tb.clamp_min(0)


def channel_groups(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which of 3M² block positions hold red, green and blue, from values [N, P, 3M²] (sign-corrected).
    Averaged over the P blocks of an image (one key for all), a position minus its block's mean is the
    image's chroma for that position's channel: positions of one channel correlate near 1 over images,
    positions of different channels do not. Three groups of M² by correlation, ordered by mean
    (prior: red ≥ green ≥ blue)."""
    v = values.double()
    chroma = (v - v.mean(-1, keepdim=True)).mean(1)  # [N, 3M²]
    corr = correlation(chroma)
    k = v.shape[-1] // 3
    rest = torch.arange(v.shape[-1])
    groups = []
    for _ in range(2):
        seed = rest[0]
        if groups:  # the position least like the groups so far seeds the next one
            seed = rest[torch.stack([corr[rest][:, g].mean(1) for g in groups]).max(0).values.argmin()]
        pick = rest[corr[seed, rest].argsort(descending=True)[:k]]
        groups.append(pick)
        rest = rest[~torch.isin(rest, pick)]
    groups.append(rest)
    means = torch.stack([v[..., g].mean() for g in groups])
    return tuple(groups[i] for i in means.argsort(descending=True).tolist())



def in_place_cost(blocks: torch.Tensor, rows: int, cols: int) -> float:
    """Summed pooled dissimilarity of pieces [N, rows·cols, M, M, C] left in their own places."""
    lr, tb = compatibility(blocks, 1)
    idx = torch.arange(rows * cols).reshape(rows, cols)
    return float(lr[idx[:, :-1], idx[:, 1:]].sum() + tb[idx[:-1], idx[1:]].sum())


__all__ = ["COLOR_PERMS", "channel_groups", "colour_sync", "compatibility", "correlation", "in_place_cost", "leading_signs", "resolve_colour", "undo_colour"]

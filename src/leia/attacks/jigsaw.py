"""jigsaw: the jigsaw-puzzle-solver attack on block scrambling (Chuman & Kiya and follow-ups; attacks.md §B).

Ciphertext only. The blocks of an encrypted image are puzzle pieces; the solver reassembles them:
1. Pieces and their variants. etc: every piece in its 8 dihedral orientations and 12 tones (6
   colour orders × NP; grayscale etc: 2), which covers etc's per-block choices. vit_block: first the
   shared in-block pixel permutation and NP mask are estimated from pooled statistics of all blocks
   of all ciphertexts in the batch (`estimate_block_permutation`); the estimate is only defined up
   to a symmetry of the block, so the un-shuffled pieces get the 8 orientations too. ele: every
   block position has its own nibble key, so its pieces have no usable variants (one each).
2. Compatibility: prediction-based dissimilarity across a shared boundary (each side's linear
   extrapolation against the other side's edge, L1), confidence-normalised by the second-best
   match. Tones act on both sides alike, so only the RELATIVE tone of two pieces matters: the table
   is [piece-orientation, piece-orientation, relative tone], 12× smaller than over all variants.
3. Placement: greedy growth inside the known R×C frame; every step places the (open slot, piece,
   orientation, absolute tone) with the lowest mean dissimilarity to its placed neighbours,
   preferring slots that close more sides. Grown from the `seeds` most confident pieces; the
   assembly with the smallest total dissimilarity is kept. Loops run over pieces, never pixels.
A whole image has symmetries no boundary score can see (its orientation; for etc also its global
colour order and NP); the evaluator scores the best of them and says so in metrics.json.
Metrics: direct comparison (pieces in the right place and orientation), neighbour comparison (right
adjacent pairs), and SSIM of the reassembled image.
Pooling: this attack solves every image's puzzle on its own, the threat of one leaked image. When
many ciphertexts share a key (every scheme here), `shared_key` is the pooled form of this solver:
the same prediction-based compatibility summed over all images, a global tree assembly, and the key
as the result. It is a separate attack rather than an option here because its output is a key that
decrypts every image, not one reassembly per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..checks import check_int
from ..ciphers.color import ycbcr_to_rgb
from ..ciphers.layout import COLOR_PERMS
from ..errors import InputError
from .base import Access, Attack, Outcome, register
from .blocks import dihedral, flatten_blocks, from_blocks, to_blocks
from .fold import fold
from .metrics import ssim

DIHEDRAL = 8
MAX_TABLE = 400_000_000  # entries of one direction's compatibility table (float32: 1.6 GB)
# The attacker's model of natural images inside a block: pixel correlation SPATIAL_RHO^(city-block
# distance), a typical value for photos (only its monotone decay matters to the layout search).
SPATIAL_RHO = 0.92


def edge_features(pieces: torch.Tensor) -> dict[str, torch.Tensor]:
    """pieces [P, M, M, C] float -> per side the features whose L1 distance is the prediction-based
    dissimilarity: D_lr(a, b) = |R_a − L_b| (a left of b), D_tb(a, b) = |B_a − T_b| (a above b).
    Each side holds its edge and its linear extrapolation across the boundary."""
    def side(edge, inner):
        return edge, 2 * edge - inner

    p = pieces
    flat = lambda *t: torch.cat([x.reshape(len(p), -1) for x in t], 1)  # noqa: E731
    right_e, right_p = side(p[:, :, -1], p[:, :, -2])
    left_e, left_p = side(p[:, :, 0], p[:, :, 1])
    bottom_e, bottom_p = side(p[:, -1], p[:, -2])
    top_e, top_p = side(p[:, 0], p[:, 1])
    return {"R": flat(right_p, right_e), "L": flat(left_e, left_p), "B": flat(bottom_p, bottom_e), "T": flat(top_e, top_p)}


class Tones:
    """The per-block tone transforms a scheme applies besides geometry: colour orders × NP (etc), NP
    only (grayscale etc) or none. Transform k = (order, np); they form a group, and L1 dissimilarity
    only depends on the RELATIVE transform of two pieces: D(t_a(a), t_b(b)) = D(a, (t_a⁻¹ t_b)(b))."""

    def __init__(self, orders: int, np_flip: bool):
        self.orders = orders
        self.items = [(s, n) for s in range(orders) for n in ((0, 1) if np_flip else (0,))]
        probe = torch.tensor([[[[10, 20, 30]]]])
        # relative[a, b] = the k with a ∘ k = b, found by acting on a probe pixel
        self.relative = torch.tensor([[next(k for k in range(len(self.items))
                                            if torch.equal(self.apply(i, self.apply(k, probe)), self.apply(j, probe)))
                                       for j in range(len(self.items))] for i in range(len(self.items))])

    def __len__(self) -> int:
        return len(self.items)

    def apply(self, k: int, blocks: torch.Tensor) -> torch.Tensor:
        """Apply transform k to blocks [..., M, M, C]: the colour order (output channel c takes
        channel COLOR_PERMS[order][c]), then NP."""
        s, n = self.items[k]
        out = blocks[..., torch.from_numpy(COLOR_PERMS[s])] if self.orders > 1 else blocks
        return 255 - out if n else out


def _normalise(d: torch.Tensor, o: int) -> torch.Tensor:
    """Confidence-normalised dissimilarity d [P·o, P, X] (x = piece-orientation, then piece y and its
    variants): D over the second-best match of x (over other pieces) and of y's variant (over other
    pieces), so that a match that stands out counts more than a merely small one."""
    a, p, x = d.shape
    second_row = d.amin(2).topk(2, dim=1, largest=False).values[:, 1]  # [P·o]
    by_piece = d.reshape(p, o, p * x).amin(1)  # best orientation of each x piece, [P, P·X]
    second_col = by_piece.topk(2, dim=0, largest=False).values[1].reshape(p, x)
    return d / (torch.minimum(second_row[:, None, None], second_col[None]) + 1e-6)


def invariant(blocks: torch.Tensor) -> torch.Tensor:
    """Per pixel the sorted folded channel values: unchanged by a block's NP and colour order (the
    evaluator's test that a piece sits in the right place and orientation)."""
    return fold(blocks.long()).sort(-1).values


class GreedySolver:
    """Greedy placement of P pieces [P, M, M, C] (uint8) in a rows×cols frame, each in one of
    `orientations` dihedral orientations and one of the tone transforms.

    Candidates are (piece, orientation, absolute tone), index (x, k) -> x·T + k, where x is a
    piece-orientation. From each seed the assembly grows on a canvas twice the frame's size, always
    placing the free candidate with the lowest mean dissimilarity to its placed neighbours (slots
    that close more sides preferred); of the seeds tried, the assembly with the smallest total
    dissimilarity wins."""

    def __init__(self, pieces: torch.Tensor, rows: int, cols: int, orientations: int, tones: Tones):
        p, o, t = len(pieces), orientations, len(tones)
        self.p, self.o, self.t, self.rows, self.cols, self.tones = p, o, t, rows, cols, tones
        oriented = torch.stack([dihedral(pieces, v) for v in range(o)], 1).reshape(p * o, *pieces.shape[1:]).float()
        e = edge_features(oriented)
        toned = [edge_features(tones.apply(k, oriented)) for k in range(t)]
        # D[x, y, k]: piece-orientation x (tone 0) against y under relative tone k
        lr = torch.stack([torch.cdist(e["R"], toned[k]["L"], p=1) for k in range(t)], -1)
        tb = torch.stack([torch.cdist(e["B"], toned[k]["T"], p=1) for k in range(t)], -1)
        piece_of = torch.arange(p * o) // o
        same = piece_of[:, None] == piece_of[None, :]
        lr[same], tb[same] = float("inf"), float("inf")
        self.raw_lr, self.raw_tb = lr, tb
        self.lr = _normalise(lr.reshape(p * o, p, o * t), o).reshape(p * o, p * o, t)
        self.tb = _normalise(tb.reshape(p * o, p, o * t), o).reshape(p * o, p * o, t)
        self.n_cand = p * o * t
        self.cand_piece = torch.arange(self.n_cand) // (o * t)

    def row(self, table: torch.Tensor, x: int, k: int, forward: bool) -> torch.Tensor:
        """Costs of all candidates beside placed candidate (x, tone k): forward means x is left/above."""
        d = table[x] if forward else table[:, x].clone()
        if forward:  # cost of (y, j) = D[x, y, rel(k, j)]
            return d[:, self.tones.relative[k]].reshape(-1)
        # y left/above x: D[y, x, rel(j, k)] for candidate (y, j)
        return d.gather(1, self.tones.relative[:, k][None].expand(len(d), -1)).reshape(-1)

    def grow(self, seed: int):
        """The assembly grown from candidate `seed`: ((slot, orientation, tone) per piece, frame)."""
        rows, cols, n_cand, t, o, p = self.rows, self.cols, self.n_cand, self.t, self.o, self.p
        size_r, size_c = 2 * rows - 1, 2 * cols - 1  # a canvas where the frame fits around any seed
        canvas = torch.full((size_r, size_c), -1, dtype=torch.long)
        cost = torch.zeros(size_r, size_c, n_cand)  # summed dissimilarity to the placed neighbours
        count = torch.zeros(size_r, size_c)
        free = torch.ones(n_cand, dtype=torch.bool)
        box = [rows - 1, rows - 1, cols - 1, cols - 1]

        def place(r: int, c: int, cand: int) -> None:
            canvas[r, c] = cand
            free.logical_and_(self.cand_piece != self.cand_piece[cand])
            x, k = divmod(cand, t)
            # the placed piece is left of (r, c+1), right of (r, c-1), above (r+1, c), below (r-1, c)
            for dr, dc, table, forward in ((0, 1, self.lr, True), (0, -1, self.lr, False),
                                           (1, 0, self.tb, True), (-1, 0, self.tb, False)):
                nr, nc = r + dr, c + dc
                if 0 <= nr < size_r and 0 <= nc < size_c:
                    cost[nr, nc] += self.row(table, x, k, forward)
                    count[nr, nc] += 1

        place(rows - 1, cols - 1, seed)
        ys, xs = torch.meshgrid(torch.arange(size_r), torch.arange(size_c), indexing="ij")
        for _ in range(p - 1):
            fits = ((torch.clamp(ys, min=box[1]) - torch.clamp(ys, max=box[0]) < rows)
                    & (torch.clamp(xs, min=box[3]) - torch.clamp(xs, max=box[2]) < cols))
            open_ = (count > 0) & (canvas < 0) & fits
            rr, cc = torch.nonzero(open_, as_tuple=True)
            score = cost[rr, cc] / count[rr, cc, None] ** 2  # mean, and prefer slots that close more sides
            score[:, ~free] = float("inf")
            slot, cand = divmod(int(torch.argmin(score)), n_cand)
            r, c = int(rr[slot]), int(cc[slot])
            place(r, c, cand)
            box = [min(box[0], r), max(box[1], r), min(box[2], c), max(box[3], c)]
        frame = canvas[box[0] : box[0] + rows, box[2] : box[2] + cols].reshape(-1)
        which = frame // (o * t)
        slots, orient, tone = (torch.empty(p, dtype=torch.long) for _ in range(3))
        slots[which] = torch.arange(rows * cols)
        orient[which] = (frame // t) % o
        tone[which] = frame % t
        return (slots, orient, tone), frame

    def total(self, frame: torch.Tensor) -> float:
        """Summed dissimilarity of all adjacent pairs of an assembly (to choose between seeds)."""
        grid = frame.reshape(self.rows, self.cols)
        x, k = grid // self.t, grid % self.t
        rel_h = self.tones.relative[k[:, :-1], k[:, 1:]]
        rel_v = self.tones.relative[k[:-1], k[1:]]
        return float(self.raw_lr[x[:, :-1], x[:, 1:], rel_h].sum() + self.raw_tb[x[:-1], x[1:], rel_v].sum())

    def solve(self, seeds_tried: int = 4):
        """Seeds: the pieces (orientation 0, tone 0: that fixes the frame) with the most confident
        best matches on all four sides. Returns per piece (slot in raster order, orientation, tone)."""
        lr, tb = self.lr, self.tb
        best = torch.stack([lr.amin((1, 2)), lr.amin((0, 2)), tb.amin((1, 2)), tb.amin((0, 2))]).sum(0)
        seeds = best.reshape(self.p, self.o)[:, 0].argsort()[:seeds_tried] * self.o * self.t
        results = [self.grow(int(sd)) for sd in seeds]
        return min(results, key=lambda r: self.total(r[1]))[0]


def solve(pieces: torch.Tensor, rows: int, cols: int, orientations: int, tones: Tones, seeds_tried: int = 4):
    """`GreedySolver(...).solve(seeds_tried)`: per piece (slot, orientation, tone)."""
    return GreedySolver(pieces, rows, cols, orientations, tones).solve(seeds_tried)


def _swap_search(a: torch.Tensor, b: torch.Tensor, restarts: int, seed: int = 0) -> torch.Tensor:
    """Quadratic assignment by best-improvement pair swaps from random starts: the π maximising
    Σ a[i, j]·b[π(i), π(j)] (a, b symmetric with zero diagonals). The gain of swapping π(r), π(s)
    for all pairs at once: 2(G[r,s] + G[s,r] − G[r,r] − G[s,s] + 2·a[r,s]·b_π[r,s]), G = a·b_π."""
    n = len(a)
    g = torch.Generator().manual_seed(seed)
    best, best_score = torch.arange(n), -float("inf")
    for _ in range(restarts):
        src = torch.randperm(n, generator=g)
        for _ in range(20 * n * n):
            bp = b[src][:, src]
            gm = a @ bp
            diag = gm.diagonal()
            gain = 2 * (gm + gm.T - diag[:, None] - diag[None, :] + 2 * a * bp)
            i, j = divmod(int(torch.argmax(gain)), n)
            if gain[i, j] <= 1e-12:
                break
            src[[i, j]] = src[[j, i]]
        score = float((a * b[src][:, src]).sum())
        if score > best_score:
            best, best_score = src.clone(), score
    return best


def block_moments(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Sums that pool block statistics over batches: (Σx [n], Σxxᵀ [n, n], count) of blocks [S, n]."""
    x = blocks.double()
    return x.sum(0), x.T @ x, len(x)


def estimate_block_permutation(blocks: torch.Tensor, m: int, np_mask: bool, restarts: int = 20):
    """`estimate_from_moments` on the blocks [S, 3M²] (uint8) of one batch."""
    return estimate_from_moments(*block_moments(blocks), m, np_mask, restarts)


def estimate_from_moments(total: torch.Tensor, products: torch.Tensor, count: int, m: int, np_mask: bool,
                          restarts: int = 20, channels: tuple[torch.Tensor, ...] | None = None):
    """Estimate vit_block's common in-block permutation (and NP mask) from pooled ciphertext blocks
    given as pooled moments (`block_moments`, summed over batches), using only statistics every natural
    photo collection shares (so pool over many images of many kinds: one class alone may break 2.):
    1. NP: positions correlate positively in natural images, so flipped ones show by sign (the
       leading eigenvector of the correlation matrix);
    2. channels: the mean of red > green > blue in photos, so the 3M² position means split into
       three groups of M²;
    3. pixels: a position correlates most with the other channels of its own pixel, so optimal
       assignments between the channel groups form the M² pixel triples;
    4. layout: the pixels' correlation matrix is matched to ρ^(city-block distance) on the M×M grid
       (a quadratic assignment over M² pixels, swap search from random starts).
    `channels` (red, green, blue position groups) replaces step 2 when the caller knows better.
    Returns (source [3M²]: plain position a reads cipher position source[a]; flips [3M²] bool, by
    cipher position). The layout is found up to the block's symmetries, which the puzzle solver's
    orientations absorb."""
    from scipy.optimize import linear_sum_assignment

    mean = total / count
    cov = products / count - mean[:, None] * mean[None, :]
    std = cov.diagonal().clamp_min(1e-9).sqrt()
    corr = cov / std[:, None] / std[None, :]
    flips = torch.zeros(len(corr), dtype=torch.bool)
    if np_mask:
        vec = torch.linalg.eigh(corr).eigenvectors[:, -1]
        flips = vec < 0 if (vec < 0).sum() <= len(vec) / 2 else vec > 0
        sign = 1 - 2 * flips.double()
        corr = corr * sign[:, None] * sign[None, :]  # NP negates a position's deviations
        mean = torch.where(flips, 255 - mean, mean)
    k = m * m
    by_mean = torch.argsort(mean, descending=True)
    red, green, blue = channels if channels is not None else (by_mean[:k], by_mean[k : 2 * k], by_mean[2 * k :])
    triples = [green]
    for group in (red, blue):  # pair every green position with the red/blue of the same pixel
        rows, cols = linear_sum_assignment(-corr[green][:, group].numpy())
        triples.append(group[torch.from_numpy(cols[np.argsort(rows)])])
    pixel = torch.stack([triples[1], triples[0], triples[2]], 1)  # [M², 3]: R, G, B positions
    pix_corr = sum(corr[pixel[:, c]][:, pixel[:, c]] for c in range(3)) / 3
    pos = torch.arange(k)
    dist = ((pos // m)[:, None] - (pos // m)[None, :]).abs() + ((pos % m)[:, None] - (pos % m)[None, :]).abs()
    model = (SPATIAL_RHO ** dist.double()).fill_diagonal_(0)
    layout = _swap_search(model, pix_corr.clone().fill_diagonal_(0), restarts)  # grid cell -> pixel
    return pixel[layout].reshape(-1), flips


@register("jigsaw")
class Jigsaw(Attack):
    threat = "COA"
    schemes = ("etc", "ele", "vit_block")
    description = "jigsaw-puzzle solver: reassemble scrambled blocks by edge compatibility"

    @dataclass(frozen=True)
    class Params:
        restarts: int = 20  # vit_block: random starts of the in-block layout search
        seeds: int = 4  # assemblies grown from the most confident seeds; the best-fitting one is kept

        def __post_init__(self):
            check_int("jigsaw", "restarts", self.restarts)
            check_int("jigsaw", "seeds", self.seeds)

    def prepare(self, access: Access) -> None:
        super().prepare(access)
        self.scheme = access.scheme
        self.m = int(access.params["block_size"])
        self.grayscale = bool(access.params.get("grayscale", False))
        self.moments, self.estimate = None, None
        h, w = access.image_size
        pieces = (h // self.m) * (w // self.m) * (3 if self.grayscale else 1)
        variants = 1 if self.scheme == "ele" else DIHEDRAL
        tones = (2 if self.grayscale else 12) if self.scheme == "etc" else 1
        table = (pieces * variants) ** 2 * tones
        if table > MAX_TABLE:
            raise InputError(
                f"jigsaw: {pieces} pieces of {self.m}x{self.m} with {variants * tones} variants each need a "
                f"{table:,}-entry compatibility table (limit {MAX_TABLE:,}); use a larger block size or smaller "
                f"images (e.g. 32x32 with block_size 4, or 224x224 with block_size 16)"
            )

    @property
    def observes(self) -> bool:
        return self.scheme == "vit_block"

    def observe(self, y: torch.Tensor) -> None:
        """vit_block: pool the block statistics of every victim ciphertext (all share the key)."""
        moments = block_moments(flatten_blocks(y.cpu(), self.m).reshape(-1, 3 * self.m**2))
        self.moments = moments if self.moments is None else tuple(a + b for a, b in zip(self.moments, moments))
        self.estimate = None

    def reconstruct(self, y: torch.Tensor, hint=None) -> Outcome:
        m, b = self.m, len(y)
        c, gh, gw = y.shape[-3:]
        rows, cols = gh // m, gw // m
        pieces = to_blocks(y.cpu(), m)  # [B, N, M, M, C]
        if self.scheme == "vit_block":
            np_mask = bool(self.access.params.get("np"))
            if self.moments is None:  # nothing pooled: this batch's own statistics
                src, flips = estimate_block_permutation(flatten_blocks(y.cpu(), m).reshape(-1, 3 * m * m), m, np_mask,
                                                        self.params.restarts)
            else:
                if self.estimate is None:
                    self.estimate = estimate_from_moments(*self.moments, m, np_mask, self.params.restarts)
                src, flips = self.estimate
            self.estimate = (src, flips)
            flat = pieces.reshape(b, -1, 3 * m * m) ^ (flips.to(torch.uint8) * 255)
            pieces = flat[..., src].reshape(pieces.shape)
        orientations = 1 if self.scheme == "ele" else DIHEDRAL
        if self.scheme == "etc":
            tones = Tones(1 if self.grayscale else 6, np_flip=True)
        else:
            tones = Tones(1, np_flip=False)
        images, solutions = [], []
        for i in range(b):
            slots, orient, tone = solve(pieces[i], rows, cols, orientations, tones, self.params.seeds)
            placed = torch.stack([tones.apply(int(tone[q]), dihedral(pieces[i][q], int(orient[q])))
                                  for q in range(len(slots))])
            arranged = torch.empty_like(placed)
            arranged[slots] = placed
            grid = from_blocks(arranged[None], gh, gw)[0]
            images.append(ycbcr_to_rgb(torch.cat(grid.split(gw // 3, -1), 0)) if c == 1 else grid)
            solutions.append(slots)
        return Outcome(torch.stack(images).to(y.device), solution=torch.stack(solutions))

    # ---------------------------------------------------------------- evaluation
    def key_metrics(self, victim) -> dict[str, float]:
        """vit_block: how much of the in-block permutation (and NP mask) the last estimate got right,
        exactly and up to the block symmetry it cannot see."""
        if self.scheme != "vit_block" or self.estimate is None:
            return {}
        m = self.m
        comps = victim.components(*self.access.image_size)
        truth = torch.argsort(torch.from_numpy(np.asarray(comps["pixel_perm"])))
        src, flips = self.estimate
        index = torch.arange(3 * m * m).reshape(m, m, 3)
        up_to = max(float((src == truth[dihedral(index, g)[..., torch.from_numpy(COLOR_PERMS[s])].reshape(-1)])
                          .float().mean()) for g in range(8) for s in range(6))
        out = {"pixel_permutation_exact": float((src == truth).float().mean()),
               "pixel_permutation_up_to_symmetry": up_to}
        if "np" in comps:  # up to the global negative, which looks as natural as the image
            agree = float((flips == torch.from_numpy(np.asarray(comps["np"])).bool()).float().mean())
            out["np_mask_up_to_negative"] = max(agree, 1 - agree)
        return out

    def _symmetries(self, square: bool):
        geometry = range(8) if square else (0, 2, 4, 6)  # those that keep a non-square frame's shape
        colours = [(s, n) for s in range(6) for n in (0, 1)] if self.scheme == "etc" and not self.grayscale else [(0, 0)]
        if self.scheme == "vit_block":
            colours = [(s, 0) for s in range(6)]
        return geometry, colours

    def score(self, outcome, victim, plain, ids) -> dict[str, torch.Tensor]:
        """Direct and neighbour comparison and SSIM, each under the global symmetry (orientation, and
        for etc colour order/NP) that is best for the image: no boundary score can choose it."""
        m = self.m
        h, w = plain.shape[-2:]
        comps = victim.components(h, w)
        origin = torch.from_numpy(np.asarray(comps["Q"] if self.scheme == "ele" else comps.get("block_perm",
                                             np.arange(victim.n_blocks(h, w)))))
        _, gh, gw = victim.cipher_shape(h, w)
        rows, cols = gh // m, gw // m
        geometry, colours = self._symmetries(rows == cols and not self.grayscale)
        direct, neighbour, best_ssim = [], [], []
        truth_blocks = invariant(to_blocks(plain.cpu(), m))
        for i in range(len(plain)):
            rec = outcome.images[i].cpu()
            labels = torch.empty(rows * cols, dtype=torch.long)
            labels[outcome.solution[i]] = origin  # original slot of the piece now at each slot
            best = (-1.0, -1.0, 0)
            for g in geometry:
                moved = dihedral(rec.permute(1, 2, 0), g).permute(2, 0, 1)
                lab = labels if self.grayscale else dihedral(labels.reshape(rows, cols, 1), g).reshape(-1)
                if self.grayscale:  # the frame of plane blocks: position and label must agree
                    d = (lab == torch.arange(rows * cols)).float().mean()
                else:
                    d = (invariant(to_blocks(moved[None], m))[0] == truth_blocks[i]).flatten(1).all(1).float().mean()
                grid = lab.reshape(rows, cols)
                right = (grid[:, 1:] == grid[:, :-1] + 1) & (grid[:, :-1] % cols != cols - 1)
                down = grid[1:] == grid[:-1] + cols
                nb = (right.sum() + down.sum()).float() / (rows * (cols - 1) + (rows - 1) * cols)
                if (float(d), float(nb)) > best[:2]:
                    best = (float(d), float(nb), g)
            moved = dihedral(rec.permute(1, 2, 0), best[2]).permute(2, 0, 1)
            variants = torch.stack([moved[torch.from_numpy(COLOR_PERMS[cs])] ^ (255 * n) for cs, n in colours])
            direct.append(best[0])
            neighbour.append(best[1])
            best_ssim.append(float(ssim(variants, plain[i : i + 1].cpu().expand_as(variants)).max()))
        return {"direct_comparison": torch.tensor(direct), "neighbour_comparison": torch.tensor(neighbour),
                "ssim_up_to_global": torch.tensor(best_ssim)}

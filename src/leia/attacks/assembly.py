"""Puzzle assembly from a pooled compatibility table: a global, tree-based placement.

Pieces are squares that may each sit in one of `orientations` dihedral orientations (8, or 1 when
the orientation is known). The compatibility tables `lr[x, y]` and `tb[x, y]` over
piece-orientations x = piece·O + orientation say how well y fits right of (below) x; smaller is
better. Placement follows Gallagher's constrained minimum spanning tree (CVPR 2012, "Jigsaw puzzles
with pieces of unknown orientation"): every candidate pairing of all pieces is ranked at once by its
confidence-normalised dissimilarity, and pairings are accepted in that order whenever they join two
different clusters without an overlap and without outgrowing the frame. Unlike greedy growth from a
seed, no early decision rests on one piece's neighbourhood; the ranking is over the whole table.
Pieces the tree leaves out (when a cluster would not fit) are placed last, each where it fits its
placed neighbours best.

The dihedral group is handled numerically, with `blocks.dihedral`'s convention (code g: g % 4
counter-clockwise quarter turns, then a left-right mirror when g >= 4), so positions and piece
orientations always transform together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .blocks import dihedral
from .jigsaw import _normalise

D4 = 8


def _d4_tables():
    grid = torch.arange(9).reshape(3, 3, 1)
    views = [dihedral(grid, g) for g in range(D4)]
    compose = torch.empty(D4, D4, dtype=torch.long)  # compose[g, h]: h first, then g
    for g in range(D4):
        for h in range(D4):
            both = dihedral(views[h], g)
            compose[g, h] = next(k for k in range(D4) if torch.equal(views[k], both))
    inverse = torch.tensor([next(k for k in range(D4) if compose[g, k] == 0) for g in range(D4)])
    # where a displacement (dr, dc) from the centre goes when the whole grid is transformed by g
    moves = {}
    for g in range(D4):
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                where = torch.nonzero(views[g][..., 0] == (1 + dr) * 3 + (1 + dc))[0]
                moves[g, dr, dc] = (int(where[0]) - 1, int(where[1]) - 1)
    return compose, inverse, moves


COMPOSE, INVERSE, _MOVES = _d4_tables()


def move(g: int, dr: int, dc: int) -> tuple[int, int]:
    """The displacement (dr, dc) after transforming the whole frame by g (linear in (dr, dc))."""
    a = _MOVES[g, 1, 0]
    b = _MOVES[g, 0, 1]
    return a[0] * dr + b[0] * dc, a[1] * dr + b[1] * dc


@dataclass
class Placement:
    """Per piece: its slot in the rows×cols frame (raster order) and the orientation g in which it
    appears there (the piece as seen in the frame is dihedral(piece, g))."""

    slot: torch.Tensor
    orientation: torch.Tensor


def _fits(h: int, w: int, rows: int, cols: int) -> bool:
    return (h <= rows and w <= cols) or (h <= cols and w <= rows)


class TreeAssembly:
    """Kruskal-style assembly over precomputed tables lr, tb [P·O, P·O] (see module docstring)."""

    def __init__(self, lr: torch.Tensor, tb: torch.Tensor, pieces: int, orientations: int, rows: int, cols: int,
                 candidates: int = 4):
        self.p, self.o, self.rows, self.cols = pieces, orientations, rows, cols
        if pieces != rows * cols:
            raise ValueError(f"{pieces} pieces do not fill a {rows}x{cols} frame")
        same = (torch.arange(pieces * orientations) // orientations)
        same = same[:, None] == same[None, :]
        self.raw = {}
        self.norm = {}
        for name, table in (("lr", lr), ("tb", tb)):
            t = table.double().clone()
            t[same] = float("inf")
            self.raw[name] = t
            self.norm[name] = _normalise(t.reshape(pieces * orientations, pieces, orientations), orientations).reshape(
                pieces * orientations, pieces * orientations) if pieces > 2 else t
        self.candidates = min(candidates, (pieces - 1) * orientations)

    def _edges(self):
        """Candidate pairings (cost, x, y, dr, dc): each piece-orientation's best few partners per side."""
        out = []
        for name, (dr, dc) in (("lr", (0, 1)), ("tb", (1, 0))):
            t = self.norm[name]
            for table, flip in ((t, False), (t.T, True)):  # best right/below partners, and best left/above
                cost, idx = table.topk(self.candidates, dim=1, largest=False)
                x = torch.arange(len(t))[:, None].expand_as(idx)
                a, b = (idx, x) if flip else (x, idx)
                out.append(torch.stack([cost.reshape(-1), a.reshape(-1).double(), b.reshape(-1).double(),
                                        torch.full((cost.numel(),), float(dr), dtype=torch.double),
                                        torch.full((cost.numel(),), float(dc), dtype=torch.double)], 1))
        edges = torch.cat(out)
        edges = edges[torch.isfinite(edges[:, 0])]
        return edges[edges[:, 0].argsort(stable=True)]

    def solve(self) -> Placement:
        p, o = self.p, self.o
        cluster = list(range(p))
        members = {i: [i] for i in range(p)}
        pos = [(0, 0)] * p
        ori = [0] * p
        for cost, x, y, dr, dc in self._edges().tolist():
            pa, a = divmod(int(x), o)
            qb, b = divmod(int(y), o)
            ca, cb = cluster[pa], cluster[qb]
            if ca == cb:
                continue
            t = int(COMPOSE[ori[pa], INVERSE[a]])  # edge frame -> cluster A's frame
            want = int(COMPOSE[t, b])  # q's orientation in A's frame
            sr, sc = move(t, int(dr), int(dc))
            target = (pos[pa][0] + sr, pos[pa][1] + sc)
            u = int(COMPOSE[want, INVERSE[ori[qb]]])  # transform of cluster B
            moved = {}
            for s in members[cb]:
                mr, mc = move(u, pos[s][0] - pos[qb][0], pos[s][1] - pos[qb][1])
                moved[s] = ((target[0] + mr, target[1] + mc), int(COMPOSE[u, ori[s]]))
            taken = {pos[s] for s in members[ca]}
            if any(v[0] in taken for v in moved.values()):
                continue
            cells = list(taken) + [v[0] for v in moved.values()]
            rs, cs = [c[0] for c in cells], [c[1] for c in cells]
            if not _fits(max(rs) - min(rs) + 1, max(cs) - min(cs) + 1, self.rows, self.cols):
                continue
            for s, (cell, g) in moved.items():
                pos[s], ori[s], cluster[s] = cell, g, ca
            members[ca].extend(members.pop(cb))
            if len(members) == 1:
                break
        return self._frame(members, pos, ori)

    # ---------------------------------------------------------------- into the frame
    def _frame(self, members, pos, ori) -> Placement:
        """Put the largest cluster into the frame (transformed so it fits), then every other piece,
        one at a time, into the free slot where it fits its placed neighbours best."""
        rows, cols, o = self.rows, self.cols, self.o
        main = max(members.values(), key=len)
        slot = torch.full((self.p,), -1, dtype=torch.long)
        orient = torch.zeros(self.p, dtype=torch.long)
        for g in range(D4 if o > 1 else 1):
            cells = {s: move(g, *pos[s]) for s in main}
            r0 = min(c[0] for c in cells.values())
            c0 = min(c[1] for c in cells.values())
            if max(c[0] for c in cells.values()) - r0 < rows and max(c[1] for c in cells.values()) - c0 < cols:
                for s, (r, c) in cells.items():
                    slot[s] = (r - r0) * cols + (c - c0)
                    orient[s] = int(COMPOSE[g, ori[s]])
                break
        else:  # cannot happen for o == 8 (some g fits); with o == 1 a cluster must fit untransformed
            main = main[:1]
            slot[main[0]] = 0
        self._fill(slot, orient)
        return Placement(slot, orient)

    def _fill(self, slot: torch.Tensor, orient: torch.Tensor) -> None:
        rows, cols, o = self.rows, self.cols, self.o
        lr, tb = self.raw["lr"], self.raw["tb"]
        while (slot < 0).any():
            grid = torch.full((rows * cols,), -1, dtype=torch.long)
            placed = torch.nonzero(slot >= 0).flatten()
            grid[slot[placed]] = placed * o + orient[placed]
            free_pieces = torch.nonzero(slot < 0).flatten()
            cand = (free_pieces[:, None] * o + torch.arange(o)[None]).reshape(-1)
            best = (float("inf"), None, None)
            for s in torch.nonzero(grid < 0).flatten().tolist():
                r, c = divmod(s, cols)
                total, count = torch.zeros(len(cand), dtype=torch.double), 0
                for nr, nc, table, forward in ((r, c - 1, lr, False), (r, c + 1, lr, True),
                                               (r - 1, c, tb, False), (r + 1, c, tb, True)):
                    if 0 <= nr < rows and 0 <= nc < cols and grid[nr * cols + nc] >= 0:
                        x = int(grid[nr * cols + nc])
                        total += table[cand, x] if forward else table[x, cand]
                        count += 1
                if count == 0:
                    continue
                score = total / count**2  # mean, and prefer slots that close more sides
                k = int(score.argmin())
                if float(score[k]) < best[0]:
                    best = (float(score[k]), s, int(cand[k]))
            if best[1] is None:  # nothing placed yet next to any free slot: start anywhere
                best = (0.0, int(torch.nonzero(grid < 0)[0]), int(cand[0]))
            piece, g = divmod(best[2], o)
            slot[piece], orient[piece] = best[1], g

    def total(self, placement: Placement) -> float:
        """Summed raw dissimilarity of all adjacent pairs of a placement (lower is better)."""
        grid = torch.empty(self.rows * self.cols, dtype=torch.long)
        grid[placement.slot] = torch.arange(self.p) * self.o + placement.orientation
        grid = grid.reshape(self.rows, self.cols)
        return float(self.raw["lr"][grid[:, :-1], grid[:, 1:]].sum() + self.raw["tb"][grid[:-1], grid[1:]].sum())

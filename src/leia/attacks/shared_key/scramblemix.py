"""ScrambleMix from its views alone: the pool of 2·pairs skk keys that the whole data set shares.

A view blends the scrambles of one key pair, (1 − m)·PE(x, k_a) + m·PE(x, k_b) with m ~ Beta(α, α).
At the published α = 0.005 the weight is almost always at an end: after leia's 16-bit quantisation,
94% of views are exactly one scramble (measured on 512 ids). So the views fall into 2·pairs groups,
one per pool key, and each group is same-key skk:

1. Sort the views by key. A view's signature: for each pair of neighbouring bytes (right, below, and
   the next channel of the same pixel), |a + b − 255| − |a − b|. In a smooth image it is positive
   where the two bytes share their NP flip and negative where they do not, so views under one key
   share its signs, and views under two keys are uncorrelated. Cosine k-means (k-means++ starts,
   `restarts` of them, seeded: the attack is reproducible) with k = 2·pairs, the pool size the
   scheme's public parameters give.
2. Recover each group's key as same-key skk does (`shared_key/skk.py`: NP by the leading
   eigenvector, colour order by pooled chroma, the global negative and colour order by priors).
3. Decrypt a view with its group's key; a new view (a held-out image) joins the group of the nearest
   centre. A blended view (about 6%) decrypts to a mix of its image with a scramble of it, not the
   image: the attack does not unmix.

Evaluation (uses the truth): each pool member is scored against the recovered key that agrees with
it most, up to skk's global symmetries; `key_recovered_fraction[_up_to_global]` is the mean over the
pool's members, `pool_members_found` how many members are some group's best match. A view is
aligned with the symmetry of the group that decrypted it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ... import ciphers
from ...errors import InputError
from ..base import Access, NotApplicable, Outcome
from .base import Strategy, register
from .skk import SkkStrategy

ITERATIONS = 30  # k-means steps per start; the groups settle in a few


def signatures(y: torch.Tensor) -> torch.Tensor:
    """Unit-norm NP-agreement signatures [N, P] of views y (uint8 [N, 3, H, W])."""
    y = y.float()
    n = len(y)

    def agree(a, b):  # > 0: the two bytes share their NP flip (in a smooth image)
        return ((a + b - 255).abs() - (a - b).abs()).reshape(n, -1)

    d = torch.cat([agree(y[..., :, 1:], y[..., :, :-1]), agree(y[..., 1:, :], y[..., :-1, :]),
                   agree(y[:, 0], y[:, 1]), agree(y[:, 1], y[:, 2])], 1)
    return d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)


def cluster(s: torch.Tensor, k: int, restarts: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine k-means of unit signatures s [N, P]: (group of every row [N], centres [k, P]), the best
    of `restarts` k-means++ starts by total similarity."""
    n = len(s)
    if n < k:
        raise InputError(f"shared_key on scramblemix sorts the views into {k} keys: it needs at least {k} victim "
                         f"ciphertexts, got {n}")
    g = torch.Generator().manual_seed(seed)
    best = None
    for _ in range(restarts):
        centres = s[torch.randint(n, (1,), generator=g)]
        while len(centres) < k:  # k-means++: far from the centres so far, by cosine
            far = (1 - (s @ centres.T).max(1).values).clamp_min(0) ** 2
            pick = torch.multinomial(far / far.sum(), 1, generator=g) if far.sum() > 0 else torch.randint(n, (1,), generator=g)
            centres = torch.cat([centres, s[pick]])
        for _ in range(ITERATIONS):
            group = (s @ centres.T).argmax(1)
            onehot = torch.nn.functional.one_hot(group, k).to(s.dtype)
            sums = onehot.T @ s
            empty = onehot.sum(0) == 0
            sums[empty] = centres[empty]  # an empty group keeps its centre
            moved = sums / sums.norm(dim=1, keepdim=True).clamp_min(1e-12)
            if torch.equal(moved, centres):
                break
            centres = moved
        group = (s @ centres.T).argmax(1)
        fit = float((s @ centres.T).max(1).values.sum())
        if best is None or fit > best[0]:
            best = (fit, group, centres)
    return best[1], best[2]


class KeyPool:
    """The recovered pool: one same-key skk cipher per group of views, and the groups' centres."""

    def __init__(self, members: list[ciphers.Cipher], centres: torch.Tensor):
        self.members, self.centres = members, centres

    def assign(self, y: torch.Tensor) -> torch.Tensor:
        """The group (recovered key) of every view y, by its signature's nearest centre."""
        return (signatures(y.cpu()) @ self.centres.T).argmax(1)

    def decrypt(self, y: torch.Tensor) -> torch.Tensor:
        return self.decrypt_assigned(y, self.assign(y))

    def decrypt_assigned(self, y: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(y)
        for k, member in enumerate(self.members):
            rows = (group == k).nonzero().squeeze(1).to(y.device)
            if len(rows):
                out[rows] = member.decrypt(y[rows])
        return out

    def save_key(self, path: Path, image_size) -> None:
        """Each recovered key as an skk key file: <stem>.member<k><suffix>."""
        path = Path(path)
        for k, member in enumerate(self.members):
            member.save_key(path.with_name(f"{path.stem}.member{k}{path.suffix}"), image_size)


@register("scramblemix")
class ScrambleMixStrategy(Strategy):
    priors = f"per recovered key, as same-key skk: {SkkStrategy.priors}"
    unresolved = ("blended views (weight strictly between 0 and 1, about 6% at alpha 0.005) are decrypted with one key "
                  "of their pair, not unmixed")

    def __init__(self, access, params):
        super().__init__(access, params)
        self.member_params = {"key_mode": "same", "color_shuffle": self.scheme_params.get("color_shuffle", True),
                              "per_image_keys": "derived"}
        self.skk = SkkStrategy(Access(scheme="skk", params=self.member_params, image_size=access.image_size), params)

    def check(self):
        if self.scheme_params.get("color_shuffle") == "legacy_inplace":
            raise NotApplicable("scramblemix with color_shuffle=legacy_inplace duplicates channels; no key decrypts it")

    def estimate(self, y: torch.Tensor) -> KeyPool:
        """The pool: the views sorted into 2·pairs groups, each group's key recovered as same-key skk's."""
        pool = 2 * int(self.scheme_params.get("pairs", 4))
        group, centres = cluster(signatures(y), pool, self.params.restarts)
        found = [k for k in range(pool) if (group == k).any()]
        members = []
        for k in found:
            key = self.skk.estimate(y[group == k])
            members.append(ciphers.create("skk", key=key))
        self.extra = {"pool_size": pool, "groups": len(found),
                      "smallest_group": min(int((group == k).sum()) for k in found)}
        return KeyPool(members, centres[found])

    def recover(self, y: torch.Tensor) -> KeyPool:
        return self.estimate(y)  # the pool decrypts as it is (one key could not)

    def decrypt(self, recovered: KeyPool, y: torch.Tensor) -> Outcome:
        group = recovered.assign(y)
        return Outcome(recovered.decrypt_assigned(y.cpu(), group).to(y.device), solution=group)

    # ---------------------------------------------------------------- evaluation (uses the truth)
    def matches(self, recovered: KeyPool, victim) -> list[list[tuple[float, float, object]]]:
        """[recovered key][pool member]: (exact, up to global, best symmetry) agreement."""
        cached = getattr(self, "_matches", None)
        if cached is None or cached[0] is not victim:
            h, w = self.access.image_size
            table = []
            for member in recovered.members:
                row = []
                for true in victim.members(h, w):
                    scores = self.skk.agreement(member, true)
                    best = max(scores, key=lambda a: a[0])
                    row.append((scores[0][0], best[0], best[1]))
                table.append(row)
            self._matches = (victim, table)
        return self._matches[1]

    def best_symmetry(self, recovered, victim):
        """A list: per recovered key, its symmetry against the pool member it matches best."""
        return [max(row, key=lambda m: m[1])[2] for row in self.matches(recovered, victim)]

    def align_to(self, recovered, images, victim, solution=None):
        if solution is None:
            raise InputError("shared_key on scramblemix aligns a view with the symmetry of the key that decrypted it: "
                             "pass the reconstruction's solution")
        out = images.clone()
        for k, g in enumerate(self.best_symmetry(recovered, victim)):
            rows = (solution.to(images.device) == k).nonzero().squeeze(1)
            if len(rows):
                out[rows] = self.skk.align(images[rows], g)
        return out

    def key_metrics(self, recovered, victim) -> dict:
        m = self.matches(recovered, victim)
        pool = len(m[0]) if m else 0
        exact = [max(row[j][0] for row in m) for j in range(pool)]
        up_to = [max(row[j][1] for row in m) for j in range(pool)]
        found = {max(range(pool), key=lambda j: row[j][1]) for row in m}
        return {
            "key_recovered_fraction": sum(exact) / pool,
            "key_recovered_fraction_up_to_global": sum(up_to) / pool,
            "pool_members_found": len(found),
            "best_global_symmetry": ",".join(g.name for g in self.best_symmetry(recovered, victim)),
            "global_symmetries": len(self.skk.symmetries(*self.access.image_size)),
            "priors": self.priors,
            "unresolved": self.unresolved,
            **{k: v for k, v in self.extra.items() if isinstance(v, (int, float, str))},
        }

    def symmetries(self, h, w):
        return self.skk.symmetries(h, w)

    def units(self, h, w):
        return self.skk.units(h, w)

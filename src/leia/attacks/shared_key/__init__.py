"""shared_key: recover the key of a shared-key scheme from ciphertexts alone (COA).

Every scheme but per-image skk encrypts a whole data set under one key, and the party the schemes
defend against (the cloud that trains on the data) holds all of those ciphertexts. Evidence that is
useless in one image is decisive when pooled over many (`leia.attacks.pooled`). This attack observes
every victim ciphertext, estimates THE KEY with the scheme's strategy (etc colour and grayscale, ele, vit_block, same-key skk, tanaka) (one module per scheme in this
package), and returns it as an ordinary cipher of the scheme (`recovered_cipher()`), which then
decrypts the victims and any other image under that key (the evaluator's held-out images, which the
attack never sees: it only ever receives victim ciphertexts through `observe`).

The key is not written anywhere unless `save_key=PATH` asks for it. Scores (evaluation only): the
fraction of key units (blocks, pixels, nibble entries) whose decryption is exactly right,
`key_recovered_fraction`, and the same up to the best of the scheme's global symmetries (mirror,
global colour order, global negative: no ciphertext-only statistic can tell those keys apart),
`key_recovered_fraction_up_to_global`, the headline number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ... import ciphers
from ...checks import check_choice, check_int
from ...errors import InputError
from ..base import Access, Attack, Outcome, register
from . import ele, etc, etc_gray, skk, tanaka, vit_block  # noqa: F401 (registers the strategies)
from .base import STRATEGIES, compose, decryption_map

SCHEMES = ("etc", "ele", "vit_block", "skk", "tanaka")


@register("shared_key")
class SharedKey(Attack):
    threat = "COA"
    schemes = SCHEMES
    not_for = {"scramblemix": "shared_key has no ScrambleMix strategy yet: each view blends the scrambles of two of the "
                              "pool's skk keys, so a strategy would first have to sort the views by key and then "
                              "recover each key as for same-key skk (not built)"}
    observes = True
    description = "key recovery from many ciphertexts under one key (pooled statistics, global assembly)"

    @dataclass(frozen=True)
    class Params:
        holdout: int = 0  # test images after the victims, under the same key, decrypted with the estimate
        save_key: str | None = None  # write the recovered key file here (nothing is written otherwise)
        candidates: int = 4  # pairings per piece-orientation and side ranked by the tree assembly
        restarts: int = 20  # vit_block/tanaka/ele: random starts of the in-block layout search
        low_nibbles: str = "predict"  # tanaka/ele: place low nibbles by neighbour prediction, or "skip"

        def __post_init__(self):
            check_int("shared_key", "holdout", self.holdout, minimum=0)
            check_int("shared_key", "candidates", self.candidates)
            check_int("shared_key", "restarts", self.restarts)
            check_choice("shared_key", "low_nibbles", self.low_nibbles, ("predict", "skip"))

    def __init__(self, **params):
        super().__init__(**params)
        self._seen: list[torch.Tensor] = []
        self._cipher: ciphers.Cipher | None = None

    def check(self, scheme, params):
        super().check(scheme, params)
        self._strategy(Access(scheme=scheme, params=params, image_size=(0, 0))).check()

    def _strategy(self, access: Access):
        return STRATEGIES.get(access.scheme).select(dict(access.params))(access, self.params)

    def prepare(self, access: Access) -> None:
        super().prepare(access)
        self.check(access.scheme, access.params)
        self.strategy = self._strategy(access)

    def observe(self, y: torch.Tensor) -> None:
        if self._cipher is not None:
            raise InputError("shared_key: the key is already estimated; it sees every victim ciphertext first")
        self._seen.append(y.cpu())

    def recovered_cipher(self) -> ciphers.Cipher:
        """The estimated key as a cipher of the scheme (estimated once, from every observed ciphertext)."""
        if self._cipher is None:
            if not self._seen:
                raise InputError("shared_key: no victim ciphertexts observed")
            y = torch.cat(self._seen)
            self._seen = []  # the estimate is frozen from here on
            key = self.strategy.estimate(y)
            self._n = len(y)
            self._cipher = ciphers.create(key.scheme, key=key)
            if self.params.save_key:
                path = Path(self.params.save_key)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._cipher.save_key(path, self.access.image_size)
        return self._cipher

    def reconstruct(self, y: torch.Tensor, hint=None) -> Outcome:
        return Outcome(self.recovered_cipher().decrypt(y.cpu()).to(y.device))

    # ---------------------------------------------------------------- evaluation (uses the truth)
    def _agreement(self, victim) -> list[tuple[float, object]]:
        h, w = self.access.image_size
        est_src, est_mask, nibbles = decryption_map(self.recovered_cipher(), h, w)
        true_src, true_mask, _ = decryption_map(victim, h, w)
        units = self.strategy.units(h, w)
        out = []
        for g in self.strategy.symmetries(h, w):
            src, mask = compose(true_src, true_mask, g, nibbles)
            right = ((src == est_src) & (mask == est_mask)).long()
            per_unit = torch.ones(int(units.max()) + 1, dtype=torch.long).scatter_reduce(0, units, right, "amin")
            out.append((float(per_unit.float().mean()), g, per_unit.bool()))
        return out

    def best_symmetry(self, victim):
        """The global symmetry g with estimate ≈ g∘(true decryption) (evaluation only)."""
        if getattr(self, "_best", None) is None:
            self._best = max(self._agreement(victim), key=lambda a: a[0])[1]
        return self._best

    def align(self, images: torch.Tensor, victim) -> torch.Tensor:
        """Undo the best global symmetry on decrypted images (evaluation only)."""
        return self.strategy.align(images, self.best_symmetry(victim))

    def key_metrics(self, victim) -> dict:
        scores = self._agreement(victim)
        best, g, right = max(scores, key=lambda a: a[0])
        out = {
            "key_recovered_fraction": scores[0][0],
            "key_recovered_fraction_up_to_global": best,
            "best_global_symmetry": g.name,
            "global_symmetries": len(scores),
            "ciphertexts_pooled": self._n,
            "priors": self.strategy.priors,
            "unresolved": self.strategy.unresolved,
        }
        h, w = self.access.image_size
        for name, members in self.strategy.groups(h, w).items():  # e.g. tanaka's high and low nibbles
            out[f"{name}_up_to_global"] = float(right[members].float().mean())
        out.update({k: v for k, v in self.strategy.extra.items() if isinstance(v, (int, float, str))})
        return out

    def score(self, outcome, victim, plain, ids) -> dict[str, torch.Tensor]:
        from ..metrics import ssim

        return {"ssim_up_to_global": ssim(self.align(outcome.images.cpu(), victim), plain.cpu())}

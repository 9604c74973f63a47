"""shared_key: recover the key of a shared-key scheme from ciphertexts alone (COA).

Every scheme but per-image skk encrypts a whole data set under one key, and the party the schemes
defend against (the cloud that trains on the data) holds all of those ciphertexts. Evidence that is
useless in one image is decisive when pooled over many (`leia.attacks.pooled`). This attack observes
every victim ciphertext, estimates THE KEY with the scheme's strategy (etc colour and grayscale, ele,
vit_block, same-key skk, tanaka; one module per scheme in this package), and returns it as an
ordinary cipher of the scheme (`recovered_cipher()`), which then decrypts the victims and any other
image under that key (the evaluator's held-out images, which the attack never sees: it only ever
receives victim ciphertexts through `observe`). ScrambleMix shares a POOL of skk keys: its strategy
sorts the views by key and recovers each (`scramblemix.py`); its `recovered_cipher()` is that pool
(`KeyPool`: `decrypt` sorts each view into a group and decrypts it with the group's key).

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
from . import ele, etc, etc_gray, scramblemix, skk, tanaka, vit_block  # noqa: F401 (registers the strategies)
from .base import STRATEGIES

SCHEMES = ("etc", "ele", "vit_block", "skk", "tanaka", "scramblemix")


@register("shared_key")
class SharedKey(Attack):
    threat = "COA"
    schemes = SCHEMES
    observes = True
    description = "key recovery from many ciphertexts under one key (pooled statistics, global assembly)"

    @dataclass(frozen=True)
    class Params:
        holdout: int = 0  # test images after the victims, under the same key, decrypted with the estimate
        save_key: str | None = None  # write the recovered key file here (nothing is written otherwise)
        candidates: int = 4  # pairings per piece-orientation and side ranked by the tree assembly
        restarts: int = 20  # vit_block/tanaka/ele: random starts of the in-block layout search; scramblemix: k-means
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

    def recovered_cipher(self):
        """The estimate, estimated once from every observed ciphertext: a cipher of the scheme (a pool
        scheme: its strategy's pool of recovered keys, which decrypts each ciphertext with its own)."""
        if self._cipher is None:
            if not self._seen:
                raise InputError("shared_key: no victim ciphertexts observed")
            y = torch.cat(self._seen)
            self._seen = []  # the estimate is frozen from here on
            self._cipher = self.strategy.recover(y)
            self._n = len(y)
            if self.params.save_key:
                path = Path(self.params.save_key)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._cipher.save_key(path, self.access.image_size)
        return self._cipher

    def reconstruct(self, y: torch.Tensor, hint=None) -> Outcome:
        return self.strategy.decrypt(self.recovered_cipher(), y)

    # ---------------------------------------------------------------- evaluation (uses the truth)
    def best_symmetry(self, victim):
        """The global symmetry g with estimate ≈ g∘(true decryption) (evaluation only); for a pool,
        one per recovered key."""
        return self.strategy.best_symmetry(self.recovered_cipher(), victim)

    def align(self, images: torch.Tensor, victim, solution=None) -> torch.Tensor:
        """Undo the best global symmetry on decrypted images (evaluation only); `solution`: the
        reconstruction's, which says for a pool which recovered key decrypted each image."""
        return self.strategy.align_to(self.recovered_cipher(), images, victim, solution)

    def key_metrics(self, victim) -> dict:
        return {**self.strategy.key_metrics(self.recovered_cipher(), victim), "ciphertexts_pooled": self._n}

    def score(self, outcome, victim, plain, ids) -> dict[str, torch.Tensor]:
        from ..metrics import ssim

        return {"ssim_up_to_global": ssim(self.align(outcome.images.cpu(), victim, outcome.solution), plain.cpu())}

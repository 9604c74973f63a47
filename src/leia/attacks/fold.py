"""fr: the fold ("basic") attack, a ciphertext-only baseline on every scheme (attacks.md §A).

fold(v) = min(v, 255 − v) per byte. Without colour shuffling, fold(skk(x)) == fold(x) exactly for any
key, so the folded ciphertext shows the folded plain image; later evaluations apply the same fold to
block schemes as a baseline (FR-Attack). `output: gray` returns the folded image's luma.
No pooling: the fold is a fixed per-byte map with no key to estimate, so more ciphertexts add
nothing (`shared_key` estimates the key itself).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import ciphers
from ..checks import check_choice
from .base import Attack, Outcome, cipher_view, register
from .metrics import luma, ssim


def fold(x: torch.Tensor) -> torch.Tensor:
    return torch.minimum(x, 255 - x)


@register("fr")
class FoldAttack(Attack):
    threat = "COA"
    description = "fold each byte to min(v, 255-v): colour or grayscale output"

    @dataclass(frozen=True)
    class Params:
        output: str = "color"

        def __post_init__(self):
            check_choice("fr", "output", self.output, ("color", "gray"))

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(ciphers.names())

    def reconstruct(self, y: torch.Tensor, hint=None) -> Outcome:
        folded = fold(cipher_view(y))
        if self.params.output == "gray":
            folded = luma(folded).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
        return Outcome(folded, solution=fold(cipher_view(y)))

    def score(self, outcome, victim, plain, ids) -> dict[str, torch.Tensor]:
        """How much of the plain image's folded form the folded ciphertext shows (1.0: the fold identity)."""
        target = fold(plain)
        return {"fold_identity": (outcome.solution == target).flatten(1).float().mean(1),
                "ssim_fold": ssim(outcome.solution, target)}

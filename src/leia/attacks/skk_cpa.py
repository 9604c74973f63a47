"""skk_cpa: one chosen image recovers a same-key SKK key (attacks.md §A; anchors.md §3).

The helper image has (1, 2, 3) in every pixel. Encrypted, a byte > 127 is an NP-flipped one (flip it
back); the order in which 1, 2, 3 then appear is the pixel's colour permutation. The recovered key
is an ordinary skk key, so decryption is the library's own. Against per-image keys the helper only
reveals its own key, which decrypts nothing else: the run shows that too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import ciphers
from ..ciphers.keyfile import Key
from ..ciphers.layout import COLOR_PERMS
from .base import Access, Attack, NotApplicable, Outcome, register

# colour code of a permutation (p0, p1, p2), looked up as 9·p0 + 3·p1 + p2
_CODE = np.full(27, -1, dtype=np.int64)
_CODE[COLOR_PERMS @ np.array([9, 3, 1])] = np.arange(6)


@register("skk_cpa")
class SkkCPA(Attack):
    threat = "CPA"
    schemes = ("skk",)
    description = "one helper image of (1, 2, 3) pixels recovers a same-key skk key"

    @dataclass(frozen=True)
    class Params:
        pass

    def check(self, scheme: str, params: dict) -> None:
        super().check(scheme, params)
        if params.get("color_shuffle") == "legacy_inplace":
            raise NotApplicable("skk with color_shuffle=legacy_inplace duplicates channels: no key decrypts it, and "
                                f"{self.name} assumes a colour permutation")

    def prepare(self, access: Access) -> None:
        super().prepare(access)
        h, w = access.image_size
        shuffle = access.params.get("color_shuffle", True)
        helper = torch.tensor([1, 2, 3], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, h, w).contiguous()
        y = access.oracle(helper.to(access.device))[0].long().cpu()  # [3, H, W]
        flipped = y > 127
        perm = (torch.where(flipped, 255 - y, y) - 1).clamp(0, 2).permute(1, 2, 0).numpy()  # [H, W, 3]
        np_bits = np.zeros((h, w, 3), dtype=np.uint8)  # by INPUT channel: the flip sits where perm[k] points
        np.put_along_axis(np_bits, perm, flipped.permute(1, 2, 0).numpy().astype(np.uint8), axis=2)
        comps = {"np": np_bits}
        if shuffle:
            codes = _CODE[perm @ np.array([9, 3, 1])]
            comps["color"] = np.where(codes < 0, 0, codes).astype(np.int64)  # (not a permutation: unreadable)
        self.recovered = {k: v.copy() for k, v in comps.items()}
        key = Key(scheme="skk", params={"key_mode": "same", "color_shuffle": shuffle, "per_image_keys": "derived"},
                  components=comps, image_size=(h, w))
        self.cipher = ciphers.create("skk", key=key)

    def reconstruct(self, y: torch.Tensor, hint=None) -> Outcome:
        return Outcome(self.cipher.decrypt(y))

    def _fraction(self, np_bits: np.ndarray, color: np.ndarray | None) -> float:
        right = (np_bits == self.recovered["np"]).all(-1)
        if color is not None:
            right &= color == self.recovered["color"]
        return float(right.mean())

    def key_metrics(self, victim) -> dict[str, float]:
        if victim.params.key_mode != "same":
            return {}  # per-image keys: scored per image in score()
        h, w = self.access.image_size
        comps = victim.components(h, w)
        return {"key_recovered_fraction": self._fraction(comps["np"], comps.get("color")), "queries": 1}

    def score(self, outcome, victim, plain, ids) -> dict[str, torch.Tensor]:
        """Against per-image (derived) keys: the fraction of each victim's pixel keys the helper's key matches."""
        if victim.params.key_mode != "per_image" or victim.throwaway:
            return {}
        h, w = plain.shape[-2:]
        bits, colors = victim.per_image_components(h, w, ids)
        return {"key_recovered_fraction": torch.tensor(
            [self._fraction(bits[i], None if colors is None else colors[i]) for i in range(len(bits))])}

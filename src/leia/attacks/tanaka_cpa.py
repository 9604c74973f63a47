"""tanaka_cpa: recover Tanaka's LE key (attacks.md §A; anchors.md §3).

Modes:
- `nibbles` (CPA, default): ONE chosen image of T = ⌈log2(6M²)⌉ blocks; in block t every nibble j
  holds bit t of j. An output nibble ≥ 8 is flipped (net flip set); un-flipped, it gives bit t of
  P[i]. T blocks give P and the net flip mask, which is all decryption needs: exact.
- `bytes` (CPA): Chang & Case's original procedure, 16 single-block helper images (M² for other
  M) that each mark one pixel with (1, 2, 3); bytes > 127 (other than 255) are taken as flipped.
  Exact against a scrambler that moves whole bytes, a few percent of bytes against nibble-level LE.
  `byte_rule: chang_case` decrypts as their released decrypt.m does (flip parity over all helpers,
  unlocated bytes left as ciphertext); `leia` (default) takes each byte's flip from the helper that
  locates it and writes 0 where no helper locates a byte.
- `kpa` (KPA): from a few known natural (plain, cipher) pairs, match every output nibble position
  to the source position whose value, or its NP, agrees across all blocks of all pairs (an optimal
  assignment on mismatch counts, so the answer is always a permutation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..checks import check_choice
from .base import Access, Attack, Outcome, register
from .blocks import flatten_blocks, from_nibbles, to_nibbles, unflatten_blocks

MODES = {"nibbles": "CPA", "bytes": "CPA", "kpa": "KPA"}


def nibble_probe(m: int) -> torch.Tensor:
    """The nibble-level chosen image: [1, 3, M, T·M], block t holding bit t of every nibble index."""
    d2 = 6 * m * m
    t = torch.arange(max(1, math.ceil(math.log2(d2))))
    nibbles = ((torch.arange(d2)[None, :] >> t[:, None]) & 1).to(torch.uint8)  # [T, 2d]
    return unflatten_blocks(from_nibbles(nibbles)[None], 3, m, m * len(t), m)


def byte_probes(m: int) -> torch.Tensor:
    """Chang & Case's helpers: M² single-block images, helper h has (1, 2, 3) at pixel h, 0 elsewhere."""
    probes = torch.zeros(m * m, m * m, 3, dtype=torch.uint8)
    probes[torch.arange(m * m), torch.arange(m * m)] = torch.tensor([1, 2, 3], dtype=torch.uint8)
    return probes.reshape(m * m, m, m, 3).permute(0, 3, 1, 2).contiguous()


@register("tanaka_cpa")
class TanakaCPA(Attack):
    schemes = ("tanaka",)
    description = "key recovery on LE: one chosen image (nibbles), 16 helpers (bytes) or known pairs (kpa)"

    @dataclass(frozen=True)
    class Params:
        mode: str = "nibbles"
        known_images: int = 4  # kpa: known (plain, cipher) pairs
        byte_rule: str = "leia"  # bytes: leia | chang_case (their released code's decryption, see _bytes_as_released)

        def __post_init__(self):
            check_choice("tanaka_cpa", "mode", self.mode, tuple(MODES))
            check_choice("tanaka_cpa", "byte_rule", self.byte_rule, ("leia", "chang_case"))

    def __init__(self, **params):
        super().__init__(**params)
        self.threat = MODES[self.params.mode]
        self.source = self.mask = None  # recovered: output nibble i reads source nibble source[i], XOR mask[i]
        self.gather = None  # byte_rule=chang_case: plain nibble j = cipher nibble gather[j] ^ gather_mask[j]

    def prepare(self, access: Access) -> None:
        super().prepare(access)
        self.m = access.params.get("block_size", 4)
        self.d2 = 6 * self.m**2
        bytes_ = self._bytes_as_released if self.params.byte_rule == "chang_case" else self._bytes
        {"nibbles": self._nibbles, "bytes": bytes_, "kpa": self._kpa}[self.params.mode]()

    # ---------------------------------------------------------------- the three recoveries
    def _nibbles(self) -> None:
        probe = nibble_probe(self.m).to(self.access.device)
        out = to_nibbles(flatten_blocks(self.access.oracle(probe), self.m))[0].long().cpu()  # [T, 2d]
        flipped = out >= 8
        bits = torch.where(flipped, 15 - out, out) & 1
        self.source = (bits << torch.arange(len(bits))[:, None]).sum(0)
        self.mask = flipped[0].long() * 15

    def _bytes(self) -> None:
        m, d = self.m, 3 * self.m**2
        y = flatten_blocks(self.access.oracle(byte_probes(m).to(self.access.device)), m)[:, 0].long().cpu()  # [M², d]
        flipped = (y > 127) & (y != 255)
        v = torch.where(flipped, 255 - y, y)
        helper, dst, value = torch.nonzero(v[:, :, None] == torch.tensor([1, 2, 3]), as_tuple=True)
        src = torch.full((d,), -1, dtype=torch.long)
        flip = torch.zeros(d, dtype=torch.long)
        src[dst] = helper * 3 + value  # byte (pixel h, channel c) sits at flat index 3h + c
        flip[dst] = flipped[helper, dst].long()
        # As a nibble map: a byte moves both its nibbles; unmapped bytes stay unknown (-1).
        self.source = torch.cat([src, torch.where(src >= 0, src + d, src)])
        self.mask = torch.cat([flip, flip]) * 15

    def _bytes_as_released(self) -> None:
        """Chang & Case's decrypt.m, whose decryption differs from `_bytes` in two ways:
        1. NP: every helper flips its bytes in (127, 255), and for each such byte the attacked image's
           byte at that position too, so a position ends up flipped when an ODD number of the M²
           helpers flipped it (`_bytes` uses the flip seen by the helper that locates the byte);
        2. a plain byte no helper locates keeps the (flipped) ciphertext byte at its own position
           (`_bytes` writes 0). Of several matches, their loop keeps the last in (row, column,
           channel) order."""
        m, d = self.m, 3 * self.m**2
        y = flatten_blocks(self.access.oracle(byte_probes(m).to(self.access.device)), m)[:, 0].long().cpu()  # [M², d]
        flipped = (y > 127) & (y != 255)
        parity = (flipped.sum(0) % 2).long()  # per byte position of the attacked image
        v = torch.where(flipped, 255 - y, y)
        src = torch.arange(d)  # plain byte s reads cipher byte src[s]
        position = torch.arange(d)
        for value in (1, 2, 3):
            hit = v == value  # [M², d]
            last = torch.where(hit, position, -1).amax(1)  # their loop keeps the last match
            found = last >= 0
            src[(torch.arange(m * m) * 3 + value - 1)[found]] = last[found]
        self.gather = torch.cat([src, src + d])
        self.gather_mask = torch.cat([parity[src], parity[src]]) * 15
        self.source = torch.full((2 * d,), -1, dtype=torch.long)  # as a key: output nibble -> plain nibble
        located = src != torch.arange(d)
        self.source[torch.cat([src, src + d])[torch.cat([located, located])]] = torch.arange(2 * d)[torch.cat([located, located])]
        self.mask = torch.cat([parity, parity]) * 15

    def _kpa(self) -> None:
        from scipy.optimize import linear_sum_assignment

        plain, cipher = self.access.known
        xp = to_nibbles(flatten_blocks(plain, self.m)).reshape(-1, self.d2).long().cpu()
        xc = to_nibbles(flatten_blocks(cipher, self.m)).reshape(-1, self.d2).long().cpu()
        same = torch.zeros(self.d2, self.d2, dtype=torch.long)
        negated = torch.zeros_like(same)
        for s in range(0, len(xp), 256):  # mismatch counts over all known blocks
            a, b = xc[s : s + 256, :, None], xp[s : s + 256, None, :]
            same += (a != b).sum(0)
            negated += (a != 15 - b).sum(0)
        cost = torch.minimum(same, negated)
        rows, cols = linear_sum_assignment(cost.numpy())
        self.source = torch.from_numpy(cols[np.argsort(rows)]).long()
        self.mask = (negated < same).long().gather(1, self.source[:, None])[:, 0] * 15

    # ---------------------------------------------------------------- decryption with the recovered map
    def reconstruct(self, y: torch.Tensor, hint=None) -> Outcome:
        b, _, h, w = y.shape
        out = to_nibbles(flatten_blocks(y, self.m))  # [B, N, 2d]
        if self.gather is not None:
            plain = out[..., self.gather.to(out.device)] ^ self.gather_mask.to(out.device, torch.uint8)
            return Outcome(unflatten_blocks(from_nibbles(plain), 3, h, w, self.m))
        known = self.source >= 0
        plain = torch.zeros_like(out)
        mask = self.mask[known].to(out.device, torch.uint8)
        plain[..., self.source[known].to(out.device)] = out[..., known.to(out.device)] ^ mask
        return Outcome(unflatten_blocks(from_nibbles(plain), 3, h, w, self.m))

    def key_metrics(self, victim) -> dict[str, float]:
        truth_p = torch.from_numpy(np.asarray(victim.components(self.m, self.m)["P"])).long()
        f = torch.from_numpy(victim.flip_mask(victim.components(self.m, self.m))).long()
        truth_mask = (f ^ f[truth_p]) * 15
        right = (self.source == truth_p) & (self.mask == truth_mask)
        return {"key_recovered_fraction": right.float().mean().item(),
                "key_entries": self.d2, "queries": {"nibbles": 1, "bytes": self.m**2, "kpa": 0}[self.params.mode]}

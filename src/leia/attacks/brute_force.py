"""brute_force: exhaustive key search, as a CALCULATION for real key sizes (attacks.md §B).

For the victim's scheme and setting: log2 of the key space (`Cipher.key_space_bits`), a measured
trial rate (one trial = derive and compile a random key of the scheme, then decrypt one victim-sized
image: what testing one key costs with this library), and the expected search time, 2^(bits−1)
trials. That is labelled a calculation. To validate the method, a REAL exhaustive search runs on a
toy key: LE with M = 1 and independent flips, (6!)·2⁶ = 46,080 keys, every one applied to a known
(plain, cipher) pair in batched tensor code; its measured time is compared with the time the same
calculation predicts from a trial rate measured on a tenth of the keys. The reconstruction is the ciphertext itself: no real
key is found.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass

import torch

from .. import ciphers
from ..checks import check_int
from .base import Access, Attack, Outcome, cipher_view, register
from .blocks import flatten_blocks, to_nibbles

SECONDS_PER_YEAR = 365.25 * 24 * 3600


def _fits(x: torch.Tensor, y: torch.Tensor, perms: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Which LE keys (P from perms, F from flips) map nibbles x [N, 6] to y: [len(perms), len(flips)].
    out[i] = in[P[i]] ^ 15·(F[i] ^ F[P[i]]), every key and block at once."""
    net = flips[None, :, :] ^ flips[:, perms].permute(1, 0, 2)  # [P, F, 6]
    moved = x[:, perms].permute(1, 0, 2)  # [P, N, 6]
    return ((moved[:, None] ^ (15 * net[:, :, None])) == y[None, None]).all(-1).all(-1)


def _cycles(perm: list[int]) -> int:
    seen, cycles = set(), 0
    for start in range(len(perm)):
        if start not in seen:
            cycles += 1
            while start not in seen:
                seen.add(start)
                start = perm[start]
    return cycles


def toy_search(seed: int = 0, pixels: int = 64, sample: int = 72) -> dict:
    """A real exhaustive search over every LE key at M = 1 with independent flips (6!·2⁶ = 46,080
    keys) for a known pair of `pixels` random pixels. The trial rate is measured on the first
    `sample` permutations, the full search time predicted from it, then the full search is run."""
    victim = ciphers.create("tanaka", block_size=1, flip="independent", secret=os.urandom(32))
    g = torch.Generator().manual_seed(seed)
    plain = torch.randint(0, 256, (1, 3, 1, pixels), dtype=torch.uint8, generator=g)
    x = to_nibbles(flatten_blocks(plain, 1))[0].long()  # [N, 6]
    y = to_nibbles(flatten_blocks(victim.encrypt(plain), 1))[0].long()
    perms = torch.tensor(list(itertools.permutations(range(6))))  # [720, 6]
    flips = (torch.arange(64)[:, None] >> torch.arange(6)) & 1  # [64, 6]
    start = time.perf_counter()
    _fits(x, y, perms[:sample], flips)
    rate = sample * 64 / (time.perf_counter() - start)
    start = time.perf_counter()
    fits = _fits(x, y, perms, flips)
    seconds = time.perf_counter() - start
    truth = victim.components(1, 1)
    p_true, f_true = torch.from_numpy(truth["P"]).long(), torch.from_numpy(truth["F"]).long()
    true_fits = bool(fits[(perms == p_true).all(1), (flips == f_true).all(1)].all())
    # Keys that encrypt identically: only the net flips F[i] ^ F[P[i]] act, and flipping F on a whole
    # cycle of P leaves them unchanged, so the true key has 2^(cycles of P) equivalents.
    return {"toy_scheme": "tanaka block_size=1 flip=independent", "toy_keys": fits.numel(),
            "toy_keys_fitting": int(fits.sum()), "toy_true_key_fits": true_fits,
            "toy_equivalent_keys": 2 ** _cycles(p_true.tolist()),
            "toy_trial_rate": rate, "toy_predicted_seconds": fits.numel() / rate, "toy_search_seconds": seconds}


@register("brute_force")
class BruteForce(Attack):
    threat = "KPA"
    description = "key-space calculation with a measured trial rate, validated by a real toy-size search"

    @dataclass(frozen=True)
    class Params:
        known_images: int = 1  # the pair a real search would test keys against
        trial_seconds: float = 1.0  # how long to measure the trial rate

        def __post_init__(self):
            check_int("brute_force", "known_images", self.known_images)

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(n for n in ciphers.names() if n != "plain")

    def prepare(self, access: Access) -> None:
        super().prepare(access)
        h, w = access.image_size
        # A throw-away per-image key has the same key space as a derived one; trials use derived keys.
        fresh = {"per_image_keys": "derived"} if access.params.get("per_image_keys") == "random" else {}
        bits = access.own_cipher(**fresh).key_space_bits((h, w))
        plain, cipher = access.known[0][:1], access.known[1][:1]
        trials, start = 0, time.perf_counter()
        while time.perf_counter() - start < self.params.trial_seconds or trials < 3:
            own = access.own_cipher(**fresh)  # trial: encrypt the known plain image, compare
            bool(torch.equal(own.encrypt(plain, ids=["known/0"] if own.needs_ids else None), cipher))
            trials += 1
        rate = trials / (time.perf_counter() - start)
        log10_seconds = (bits - 1) * math.log10(2) - math.log10(rate)
        self.result = {
            "calculation": True,
            "key_space_log2": bits,
            "trials_per_second": rate,
            "trial": "derive and compile a random key, encrypt the known image, compare",
            "expected_log10_years": log10_seconds - math.log10(SECONDS_PER_YEAR),
            **toy_search(),
        }

    def reconstruct(self, y: torch.Tensor, hint=None) -> Outcome:
        return Outcome(cipher_view(y).clone())  # a search of 2^bits keys does not finish

    def summary(self) -> dict:
        return dict(self.result)

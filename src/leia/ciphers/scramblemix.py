"""scramblemix: ScrambleMix (Madono, Tanaka, Onishi; PSIVT 2023; MADONOKOUKI/psivt23_scramblemix).

A view of an image blends two pixel-based encryptions (skk, `PE`) of it under a key pair:
    view = (1 - m)·PE(x, k_a) + m·PE(x, k_b),   m ~ Beta(alpha, alpha),  alpha = 5e-3 as published.
Beta(5e-3, 5e-3) puts almost all its mass next to 0 and 1, so most views are nearly one scramble.

Keys (docs/ciphers.md): a pool of `pairs` key pairs, 2·pairs skk keys derived from the secret
(pool member k: child ("pool", k), streams "np" and "color" as skk draws them), plus 32 bytes
`view_secret` from which every view's randomness is derived. Pair p is members (2p, 2p+1). The
key file holds `np` [2·pairs, H, W, 3] bits, `color` [2·pairs, H, W] codes (without them when
color_shuffle=false) and `view_secret` [32] bytes.

Views are deterministic. View v of the image with id i uses
- pair (s_i + v) mod pairs, where s_i is uniform in the pool, drawn from (view_secret, i): the
  views 0..pairs-1 of an image use every pair once, as the reference code's D training views do;
- m drawn from (view_secret, i, v) by Jöhnk's exact Beta sampler on 53-bit uniforms (in logs,
  since u^(1/alpha) underflows), then quantised to 16 bits: the blend is the integer
  ((65536 - w)·a + w·b + 32768) >> 16 with w = round(m·65536), the same bytes on every device.
Training view d of epoch e is view e·views + d (fresh blends every epoch, as the reference draws m
per call); test view t is view t. `encrypt` returns view 0.

A blend cannot be inverted: `decrypt` refuses. Each scramble is an skk encryption and is exact and
invertible (`scramble`, `unscramble`); the exactness tests cover those.

`views` (D), `kl_weight` and `test_pairs` (T) are training options, named here because the paper
sets them with the scheme: D views per image in a batch, the self-teaching term
kl_weight·mean_d KL(p_d ‖ mean_d p_d) beside the cross-entropy, and test-time averaging of the
logits of T views (a client-side step: the client encrypts its image T times). They are not part
of the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..checks import check_int
from ..errors import InputError, KeyMismatchError, NotInvertibleError
from .base import CHUNK, Cipher, register
from .keyfile import Key
from .keystream import KeyDeriver
from .skk import SKK, check_color_shuffle
from .validation import check_bits, normalise_ids

TRAINING_OPTIONS = ("views", "kl_weight", "test_pairs")
WEIGHT_BITS = 16


def beta_johnk(stream, alpha: float) -> float:
    """One Beta(alpha, alpha) draw from a key stream (Jöhnk 1964): U, V uniform in (0, 1),
    X = U^(1/alpha), Y = V^(1/alpha); accept when X + Y <= 1 and return X / (X + Y). Exact for any
    alpha > 0; it accepts with probability ~1 at alpha = 5e-3 and 1/2 at alpha = 1, and ever more
    rarely above, hence leia's alpha <= 1. U and V are 53-bit uniforms from 8 stream bytes each."""
    while True:
        u, v = (((int.from_bytes(stream.read(8), "big") >> 11) + 0.5) / 2.0**53 for _ in range(2))
        lx, ly = math.log(u) / alpha, math.log(v) / alpha
        top = max(lx, ly)
        if top + math.log(math.exp(lx - top) + math.exp(ly - top)) <= 0.0:
            return 1.0 / (1.0 + math.exp(ly - lx)) if ly - lx < 700 else 0.0


@register("scramblemix")
class ScrambleMix(Cipher):
    description = "a Beta(α, α) blend of two pixel-based encryptions under a key pair (Madono et al. 2023)"

    @dataclass(frozen=True)
    class Params:
        pairs: int = 4
        alpha: float = 5e-3
        color_shuffle: bool | str = True  # the pixel encryption's colour mode, as skk's
        views: int = 4  # D: training views per image
        kl_weight: float = 1.0
        test_pairs: int = 1  # T: test-time views averaged (client side); 1 = no averaging

        def __post_init__(self):
            for name in ("pairs", "views", "test_pairs"):
                check_int("scramblemix", name, getattr(self, name))
            if not 0 < float(self.alpha) <= 1:
                raise InputError(f"scramblemix: alpha must be in (0, 1] (Jöhnk's Beta sampler accepts ever more rarely "
                                 f"above 1; the published value is 0.005), got {self.alpha!r}")
            if float(self.kl_weight) < 0:
                raise InputError(f"scramblemix: kl_weight must be >= 0, got {self.kl_weight!r}")
            check_color_shuffle("scramblemix", self.color_shuffle)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._members: dict[tuple[int, int], list[SKK]] = {}

    @property
    def needs_ids(self) -> bool:
        return True

    @property
    def invertible(self) -> bool:
        return False

    def __getstate__(self):
        state = super().__getstate__()
        state["_members"] = {}
        return state

    # ------------------------------------------------------------------ keys
    def derive(self, keys: KeyDeriver, h, w):
        n = 2 * self.params.pairs
        members = [keys.child("pool", str(k)) for k in range(n)]
        comps = {"np": np.stack([m.stream("np").bits(3 * h * w).reshape(h, w, 3) for m in members])}
        if self.params.color_shuffle:
            comps["color"] = np.stack([m.stream("color").below(6, h * w).reshape(h, w) for m in members])
        comps["view_secret"] = np.frombuffer(keys.stream("views").read(32), dtype=np.uint8).copy()
        return comps

    def check_components(self, comps, h, w):
        n = 2 * self.params.pairs
        if "np" not in comps or "view_secret" not in comps:
            raise KeyMismatchError("scramblemix key: components np and view_secret are required")
        check_bits(np.asarray(comps["np"]), (n, h, w, 3), "np", "scramblemix")
        if self.params.color_shuffle:
            color = np.asarray(comps.get("color", np.empty(0)))
            if color.shape != (n, h, w) or color.max(initial=0) > 5:
                raise KeyMismatchError(f"scramblemix key: color must be codes 0..5 of shape [{n}, {h}, {w}]")
        elif "color" in comps:
            raise KeyMismatchError("scramblemix key with color_shuffle=false must not carry colour codes")
        if np.asarray(comps["view_secret"]).shape != (32,):
            raise KeyMismatchError("scramblemix key: view_secret must be 32 bytes")

    def key_params(self):
        return {k: v for k, v in self.config().items() if k not in TRAINING_OPTIONS}

    def compile(self, comps, h, w):
        raise NotInvertibleError("scramblemix blends two scrambles per view; it has no single gather map "
                                 "(scramble(x, k) is the pool member k's)")

    def key_space_bits(self, image_size=(32, 32)):
        pixels = image_size[0] * image_size[1]
        one = 3 * pixels + (pixels * float(np.log2(6)) if self.params.color_shuffle else 0.0)
        return 2 * self.params.pairs * one

    # ------------------------------------------------------------------ the pool's scrambles
    def members(self, h: int, w: int) -> list[SKK]:
        """The pool's 2·pairs skk ciphers (same key for every image) for h×w images."""
        if (h, w) not in self._members:
            comps = self.components(h, w)
            params = {"key_mode": "same", "color_shuffle": self.params.color_shuffle, "per_image_keys": "derived"}
            self._members[(h, w)] = [
                SKK(key=Key(scheme="skk", params=params, image_size=(h, w),
                            components={"np": comps["np"][k], **({"color": comps["color"][k]} if "color" in comps else {})}))
                for k in range(2 * self.params.pairs)
            ]
        return self._members[(h, w)]

    def scramble(self, x: torch.Tensor, member: int) -> torch.Tensor:
        """Pool member `member`'s pixel-based encryption of x (exact; invertible unless legacy_inplace)."""
        return self.members(*x.shape[-2:])[self._member_index(member)].encrypt(x)

    def unscramble(self, y: torch.Tensor, member: int) -> torch.Tensor:
        return self.members(*y.shape[-2:])[self._member_index(member)].decrypt(y)

    def _member_index(self, member: int) -> int:
        n = 2 * self.params.pairs
        if not 0 <= int(member) < n:
            raise InputError(f"scramblemix has {n} pool members (2 x pairs={self.params.pairs}), got member {member}")
        return int(member)

    # ------------------------------------------------------------------ views
    def view_parameters(self, ids: Sequence[str], views: Sequence[int], h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """(pair [B, V] int64, weight w [B, V] int64 in 0..65536) of views `views` of images `ids`."""
        secret = bytes(np.asarray(self.components(h, w)["view_secret"], dtype=np.uint8))
        base = KeyDeriver(secret, self.name, "views")
        pairs, weights = np.empty((len(ids), len(views)), np.int64), np.empty((len(ids), len(views)), np.int64)
        for i, image_id in enumerate(ids):
            image = base.child("image", image_id)
            start = int(image.stream("pair").below(self.params.pairs, 1)[0])
            for j, v in enumerate(views):
                m = beta_johnk(image.child("view", str(v)).stream("mix"), float(self.params.alpha))
                pairs[i, j], weights[i, j] = (start + v) % self.params.pairs, round(m * 2**WEIGHT_BITS)
        return pairs, weights

    def encrypt_views(self, x: torch.Tensor, ids, views: Sequence[int]) -> torch.Tensor:
        """Views `views` of images x [B, 3, H, W] (uint8) with ids: uint8 [B, len(views), 3, H, W]."""
        b, _, h, w = x.shape
        ids = normalise_ids(ids, b, self.name)
        pair, weight = self.view_parameters(ids, list(views), h, w)
        out = torch.empty((b, len(views), 3, h, w), dtype=torch.uint8, device=x.device)
        members = self.members(h, w)
        for p in np.unique(pair).tolist():  # each pair's two scrambles, of the images that use it
            rows, cols = (torch.from_numpy(a).to(x.device) for a in np.nonzero(pair == p))
            for start in range(0, len(rows), CHUNK):
                r, c = rows[start:start + CHUNK], cols[start:start + CHUNK]
                a, bb = (members[2 * p + k].encrypt(x[r]).int() for k in (0, 1))
                wt = torch.from_numpy(weight[r.cpu().numpy(), c.cpu().numpy()]).to(x.device, torch.int32)[:, None, None, None]
                out[r, c] = (((2**WEIGHT_BITS - wt) * a + wt * bb + 2 ** (WEIGHT_BITS - 1)) >> WEIGHT_BITS).to(torch.uint8)
        return out

    def views_for(self, train: bool, epoch: int) -> list[int]:
        """Training: views e·D .. e·D + D-1 of epoch e (fresh blends every epoch); test: views 0..T-1."""
        d = self.params.views
        return list(range(epoch * d, (epoch + 1) * d)) if train else list(range(self.params.test_pairs))

    def _encrypt_batch(self, x, ids):
        if ids is None:
            raise InputError("scramblemix derives each view from the image id: pass ids= (one per image)")
        return self.encrypt_views(x, ids, [0])[:, 0]

    def _invert(self, y, h, w, ids):
        raise NotInvertibleError("scramblemix blends two scrambles with a random weight; a view cannot be decrypted "
                                 "(each scramble can: unscramble(y, member))")

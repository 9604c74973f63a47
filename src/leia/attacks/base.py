"""The attack interface: what an attacker is given (threat model), what it returns, and the registry.

An attack never receives the victim's cipher object. It gets an `Access`: the scheme's name and
parameters (Kerckhoffs: the algorithm is public, the key is not), plus what its threat model grants:
- COA: nothing more; it only sees the ciphertexts it attacks.
- KPA: `known`, a few (plain, cipher) pairs under the victim key (images disjoint from the victims).
- CPA: `oracle`, which encrypts images of the attacker's choice under the victim key.
Learned attacks also get `own_cipher()`, fresh ciphers of the same scheme with the attacker's own random
keys, and the attacker's own images (disjoint from the victims').
The evaluator (the attack task) alone holds the victim cipher; it uses it to score recovered keys.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch

from .. import ciphers
from ..errors import NotApplicable, UnknownNameError  # noqa: F401 (NotApplicable: re-exported)
from ..registry import Registry

THREATS = ("COA", "KPA", "CPA")


@dataclass
class Access:
    """What the attacker has besides the ciphertexts (see module docstring)."""

    scheme: str
    params: dict[str, Any]
    image_size: tuple[int, int]
    oracle: Callable[[torch.Tensor], torch.Tensor] | None = None
    known: tuple[torch.Tensor, torch.Tensor] | None = None  # (plain, cipher) uint8
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def own_cipher(self, **overrides) -> ciphers.Cipher:
        """A cipher of the victim's scheme and parameters with a fresh random key of the attacker's."""
        return ciphers.create(self.scheme, secret=os.urandom(32), **{**self.params, **overrides})


@dataclass
class Outcome:
    """An attack's answer for a batch: reconstructions (uint8 [B, 3, H, W]) and, where the attack
    produces them, per-image extra numbers (e.g. jigsaw's direct comparison) computed by `score`."""

    images: torch.Tensor
    solution: Any = None


class Attack(abc.ABC):
    """Base of every attack. Subclasses set `threat`, `schemes` (the scheme names it applies to),
    `Params`, and implement `prepare` (use the access once) and `reconstruct` (a batch)."""

    name: ClassVar[str] = ""
    threat: ClassVar[str] = "COA"
    learned: ClassVar[bool] = False
    schemes: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, **params):
        names = [f.name for f in dataclasses.fields(self.Params)]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise UnknownNameError(
                f"unknown parameter(s) {', '.join(map(repr, unknown))} for attack {self.name!r}; "
                f"its parameters are: {', '.join(names) or '(none)'}"
            )
        self.params = self.Params(**params)
        if self.threat not in THREATS:
            raise ValueError(f"attack {self.name}: threat must be one of {THREATS}")

    def config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.params)

    # ---------------------------------------------------------------- applicability
    def check(self, scheme: str, params: dict[str, Any]) -> None:
        """Raise NotApplicable when the attack does not apply to this scheme setting."""
        if scheme not in self.schemes:
            raise NotApplicable(
                f"attack {self.name!r} applies to scheme{'s' if len(self.schemes) > 1 else ''} "
                f"{', '.join(self.schemes)}; not to {scheme!r}"
            )

    # ---------------------------------------------------------------- the attack
    def prepare(self, access: Access) -> None:
        """Use the threat model's access once (oracle queries, known pairs, training is separate)."""
        self.access = access

    observes: ClassVar[bool] = False  # True: `observe` sees every victim ciphertext before `reconstruct`

    def observe(self, y: torch.Tensor) -> None:
        """Study all victim ciphertexts first (a COA attacker has them all), e.g. pooled statistics."""

    def hint(self, plain: torch.Tensor):
        """What the attack is told about each victim image besides its ciphertext (None: nothing)."""
        return None

    @abc.abstractmethod
    def reconstruct(self, y: torch.Tensor, hint=None) -> Outcome:
        """Reconstruct plain images from ciphertexts y (uint8, the cipher's output layout)."""

    def recovered_cipher(self) -> ciphers.Cipher | None:
        """The key the attack recovered, as a cipher of the scheme (None: this attack recovers none)."""
        return None

    # ---------------------------------------------------------------- evaluation (uses the truth)
    def align(self, images: torch.Tensor, victim: ciphers.Cipher, solution=None) -> torch.Tensor:
        """Decrypted images with the recovered key's global symmetry undone (identity if it has none);
        `solution`: the Outcome's, from the reconstruction of these images."""
        return images

    def key_metrics(self, victim: ciphers.Cipher) -> dict[str, float]:
        """Recovered-key numbers against the victim key (evaluation only); {} if no key is recovered."""
        return {}

    def score(self, outcome: Outcome, victim: ciphers.Cipher, plain: torch.Tensor, ids) -> dict[str, torch.Tensor]:
        """Per-image extra metrics for a batch (evaluation only)."""
        return {}

    def summary(self) -> dict[str, Any]:
        """Run-level numbers that are not per image (e.g. brute force's calculation)."""
        return {}


ATTACKS: "Registry[Attack]" = Registry("attack")
register = ATTACKS.register


def cipher_view(y: torch.Tensor) -> torch.Tensor:
    """A ciphertext as an RGB-shaped image for viewing and baselines: grayscale EtC's H×3W planes are
    shown as the three planes stacked as channels."""
    if y.shape[-3] == 1:
        return torch.cat(y.split(y.shape[-1] // 3, dim=-1), dim=-3)
    return y

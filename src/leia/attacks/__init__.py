"""leia.attacks: attacks on learnable image encryption, registered by name like the schemes.

    from leia import attacks
    attacks.names()                         # registered attacks
    a = attacks.create("tanaka_cpa", mode="nibbles")
    a.check("tanaka", {"block_size": 4})    # raises NotApplicable for schemes it does not apply to

Runs go through `python attack.py scheme=<s> attack=<a>` (leia.attacking), which grants each attack
exactly what its threat model allows (see leia.attacks.base).
"""

from __future__ import annotations

from . import brute_force, fold, jigsaw, learned, shared_key, skk_cpa, skk_greedy, tanaka_cpa  # noqa: F401 (registers)
from .base import ATTACKS, THREATS, Access, Attack, NotApplicable, Outcome


def names() -> list[str]:
    """Names of the registered attacks."""
    return ATTACKS.names()


def get(name: str) -> type[Attack]:
    return ATTACKS.get(name)


def create(name: str, **params) -> Attack:
    return ATTACKS.create(name, **params)


__all__ = ["ATTACKS", "THREATS", "Access", "Attack", "NotApplicable", "Outcome", "create", "get", "names"]

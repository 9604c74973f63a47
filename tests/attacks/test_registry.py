"""The attack registry: names, parameters, and refusals that name the schemes an attack applies to."""

import pytest

from leia import attacks, ciphers
from leia.attacks import NotApplicable
from leia.errors import UnknownNameError

ATTACKS = ["brute_force", "fr", "gan", "itn", "jigsaw", "shared_key", "skk_cpa", "skk_greedy", "tanaka_cpa"]


def test_every_attack_of_the_issue_is_registered():
    assert attacks.names() == ATTACKS


def test_unknown_attack_and_parameter_are_refused_with_what_exists():
    with pytest.raises(UnknownNameError, match="registered attacks: brute_force, fr"):
        attacks.create("fold")
    with pytest.raises(UnknownNameError, match="its parameters are: mode, known_images"):
        attacks.create("tanaka_cpa", modes="bytes")
    with pytest.raises(ValueError, match="mode must be one of nibbles, bytes, kpa"):
        attacks.create("tanaka_cpa", mode="byte")


@pytest.mark.parametrize("attack, scheme, applies_to", [
    ("skk_cpa", "etc", "skk"), ("tanaka_cpa", "skk", "tanaka"), ("skk_greedy", "tanaka", "skk"),
    ("jigsaw", "skk", "etc, ele, vit_block"), ("jigsaw", "tanaka", "etc, ele, vit_block"),
])
def test_an_attack_refuses_schemes_it_does_not_apply_to_and_names_those_it_does(attack, scheme, applies_to):
    with pytest.raises(NotApplicable, match=f"applies to schemes? {applies_to}; not to '{scheme}'"):
        attacks.create(attack).check(scheme, {})


def test_shared_key_refuses_scramblemix_only_where_no_key_decrypts_it():
    attacks.create("shared_key").check("scramblemix", {"color_shuffle": True})
    with pytest.raises(NotApplicable, match="legacy_inplace duplicates channels; no key decrypts it"):
        attacks.create("shared_key").check("scramblemix", {"color_shuffle": "legacy_inplace"})


@pytest.mark.parametrize("attack", ["fr", "itn", "gan"])
def test_generic_attacks_apply_to_every_registered_scheme(attack):
    for scheme in ciphers.names():
        attacks.create(attack).check(scheme, {})


def test_brute_force_applies_to_every_keyed_scheme():
    a = attacks.create("brute_force")
    for scheme in ciphers.names():
        if scheme == "plain":
            with pytest.raises(NotApplicable):
                a.check(scheme, {})
        else:
            a.check(scheme, {})


def test_threat_models_are_explicit():
    assert attacks.create("tanaka_cpa").threat == "CPA"
    assert attacks.create("tanaka_cpa", mode="kpa").threat == "KPA"
    assert {attacks.create(n).threat for n in ("fr", "skk_greedy", "jigsaw", "itn", "gan")} == {"COA"}

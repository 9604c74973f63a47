"""Analytic attacks on real photos: the CPAs and KPA recover keys exactly (anchors.md §3), the fold
identity holds bit for bit, the batched greedy decoder equals a per-pixel loop, brute force agrees
with a real toy search."""

import numpy as np
import pytest
import torch

from leia import attacks, ciphers
from leia.attacks.fold import fold
from leia.attacks.metrics import exact_bytes, image_metrics
from leia.attacks.reference import chang_case_greedy, chang_case_tanaka_bytes, greedy_decode_loop
from leia.attacks.skk_greedy import candidates
from tests.attacks.helpers import access_for, ids, photos, victim


def cpa(name, cipher, shape=(64, 64), **params):
    a = attacks.create(name, **params)
    a.check(cipher.name, cipher.config())
    a.prepare(access_for(cipher, shape, threat="CPA"))
    return a


# ---------------------------------------------------------------- tanaka_cpa
@pytest.mark.parametrize("block_size, flip", [(4, "derived"), (2, "derived"), (8, "derived"), (4, "independent")])
def test_nibble_cpa_recovers_the_le_key_from_one_chosen_image_and_decrypts_everything(block_size, flip):
    x = photos()
    v = victim("tanaka", seed=5, block_size=block_size, flip=flip)
    a = cpa("tanaka_cpa", v)
    assert a.key_metrics(v)["key_recovered_fraction"] == 1.0 and a.key_metrics(v)["queries"] == 1
    assert torch.equal(a.reconstruct(v.encrypt(x)).images, x)


def test_nibble_cpa_needs_only_ceil_log2_of_6m2_blocks():
    from leia.attacks.tanaka_cpa import nibble_probe

    assert nibble_probe(4).shape == (1, 3, 4, 4 * 7)  # ⌈log2 96⌉ = 7 blocks at M = 4
    assert int(nibble_probe(4).max()) <= 0x11  # every nibble 0 or 1


def test_byte_level_cpa_is_exact_against_a_byte_scrambler_but_not_against_nibble_level_le():
    x = photos()
    rng = np.random.default_rng(0)
    pi, b = rng.permutation(48), rng.integers(0, 2, 48)  # an LE key that moves whole bytes
    byte_level = ciphers.create("tanaka", permutation=np.concatenate([pi, pi + 48]), flip_mask=np.concatenate([b, b]))
    a = cpa("tanaka_cpa", byte_level, mode="bytes")
    assert torch.equal(a.reconstruct(byte_level.encrypt(x)).images, x)
    assert a.key_metrics(byte_level)["queries"] == 16
    le = victim("tanaka", seed=1)
    a = cpa("tanaka_cpa", le, mode="bytes")
    assert a.key_metrics(le)["key_recovered_fraction"] < 0.3
    assert exact_bytes(a.reconstruct(le.encrypt(x)).images, x).mean() < 0.15  # "a few percent"


def test_byte_rule_chang_case_reproduces_their_released_decryption():
    """byte_rule=chang_case against a loop-for-loop transcription of their decrypt.m; the leia rule
    differs from it (unlocated bytes, flip parity)."""
    from leia.attacks.tanaka_cpa import byte_probes

    x = photos(size=32)[:2]
    le = victim("tanaka", seed=3)
    helpers = le.encrypt(byte_probes(4)).permute(0, 2, 3, 1).numpy()
    outs = {}
    for rule in ("leia", "chang_case"):
        a = cpa("tanaka_cpa", le, mode="bytes", byte_rule=rule)
        outs[rule] = a.reconstruct(le.encrypt(x)).images
    for i in range(len(x)):
        theirs = chang_case_tanaka_bytes(helpers, le.encrypt(x[i : i + 1])[0].permute(1, 2, 0).numpy())
        assert np.array_equal(outs["chang_case"][i].permute(1, 2, 0).numpy(), theirs)
    assert not torch.equal(outs["leia"], outs["chang_case"])


def test_kpa_matches_nibbles_across_known_natural_pairs_exactly():
    v = victim("tanaka", seed=2)
    known, x = photos()[:3], photos()[3:]  # colour photos: grey ones cannot tell channels apart
    a = attacks.create("tanaka_cpa", mode="kpa")
    a.prepare(access_for(v, (64, 64), known=(known, v.encrypt(known))))
    assert a.key_metrics(v)["key_recovered_fraction"] == 1.0
    assert torch.equal(a.reconstruct(v.encrypt(x)).images, x)


# ---------------------------------------------------------------- skk_cpa
@pytest.mark.parametrize("shuffle", [True, False])
def test_skk_cpa_one_helper_image_decrypts_every_same_key_image(shuffle):
    x = photos()
    v = victim("skk", seed=3, color_shuffle=shuffle)
    a = cpa("skk_cpa", v)
    assert a.key_metrics(v) == {"key_recovered_fraction": 1.0, "queries": 1}
    assert torch.equal(a.reconstruct(v.encrypt(x)).images, x)


def test_skk_cpa_is_defeated_by_per_image_keys():
    x = photos()
    v = victim("skk", seed=3, key_mode="per_image")
    a = cpa("skk_cpa", v)
    outcome = a.reconstruct(v.encrypt(x, ids=ids(v, len(x))))
    assert exact_bytes(outcome.images, x).mean() < 0.3
    fractions = a.score(outcome, v, x, ids(v, len(x)))["key_recovered_fraction"]
    assert fractions.max() < 0.1  # 1/48 of pixel keys agree by chance


# ---------------------------------------------------------------- fr
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fold_identity_holds_bit_exactly_without_colour_shuffling(seed):
    x = photos()
    v = victim("skk", seed=seed, color_shuffle=False)
    assert torch.equal(fold(v.encrypt(x)), fold(x))
    per_image = victim("skk", key_mode="per_image", per_image_keys="random", color_shuffle=False)
    assert torch.equal(fold(per_image.encrypt(x)), fold(x))
    shuffled = victim("skk", seed=seed)
    assert not torch.equal(fold(shuffled.encrypt(x)), fold(x))


def test_fr_attack_reports_the_fold_identity_and_gives_colour_or_gray_images():
    x = photos()
    v = victim("skk", seed=0, color_shuffle=False)
    for output in ("color", "gray"):
        a = attacks.create("fr", output=output)
        a.prepare(access_for(v, (64, 64)))
        out = a.reconstruct(v.encrypt(x))
        assert out.images.shape == x.shape and out.images.dtype == torch.uint8
        assert a.score(out, v, x, None)["fold_identity"].min() == 1.0
    assert (out.images[:, 0] == out.images[:, 1]).all()  # gray: one value per pixel


# ---------------------------------------------------------------- skk_greedy
def test_batched_greedy_decoder_equals_the_per_pixel_loop():
    x = photos(size=32)[:3]
    v = victim("skk", key_mode="per_image", per_image_keys="random")
    y = v.encrypt(x)
    a = attacks.create("skk_greedy", first_pixel="given")
    a.prepare(access_for(v, (32, 32)))
    batched = a.reconstruct(y, hint=a.hint(x)).images
    for i in range(len(x)):
        loop = greedy_decode_loop(y[i].numpy(), x[i, :, 0, 0].numpy())
        assert np.array_equal(batched[i].numpy(), loop)


def test_ties_last_reproduces_chang_and_cases_released_decoder():
    """ties=last against a loop-for-loop transcription of their MATLAB decoder; ties=first (leia's
    order) gives other images, so the option matters."""
    x = photos(size=32)[:3]
    v = victim("skk", key_mode="per_image", per_image_keys="random")
    y = v.encrypt(x)
    out = {}
    for ties in ("first", "last"):
        a = attacks.create("skk_greedy", first_pixel="given", ties=ties)
        a.prepare(access_for(v, (32, 32)))
        out[ties] = a.reconstruct(y, hint=a.hint(x)).images
    for i in range(len(x)):
        assert np.array_equal(out["last"][i].numpy(), chang_case_greedy(y[i].numpy(), x[i, :, 0, 0].numpy()))
    assert not torch.equal(out["first"], out["last"])


def test_candidates_contain_the_true_pixel():
    x = photos(size=32)
    v = victim("skk", key_mode="per_image", per_image_keys="random")
    assert (candidates(v.encrypt(x)) == x[:, None].to(torch.int16)).all(2).any(1).all()


def test_greedy_recovers_structure_and_the_global_decoder_beats_it():
    x = photos()
    v = victim("skk", key_mode="per_image", per_image_keys="random")
    y = v.encrypt(x)
    baseline = image_metrics(y, x)["ssim"].mean()
    results = {}
    for decoder in ("greedy", "global"):
        a = attacks.create("skk_greedy", first_pixel="given", decoder=decoder)
        a.prepare(access_for(v, (64, 64)))
        results[decoder] = image_metrics(a.reconstruct(y, hint=a.hint(x)).images, x)["ssim"].mean()
    assert results["greedy"] > baseline + 0.2
    assert results["global"] > results["greedy"]


def test_first_pixel_search_recovers_the_image_up_to_its_global_colour_and_np():
    x = photos()
    v = victim("skk", key_mode="per_image", per_image_keys="random")
    a = attacks.create("skk_greedy", first_pixel="search")
    a.prepare(access_for(v, (64, 64)))
    out = a.reconstruct(v.encrypt(x))
    assert a.hint(x) is None
    assert a.score(out, v, x, None)["ssim_up_to_global"].mean() > image_metrics(v.encrypt(x), x)["ssim"].mean() + 0.2


# ---------------------------------------------------------------- brute_force
def test_toy_exhaustive_search_finds_the_key_and_agrees_with_the_calculation():
    from leia.attacks.brute_force import toy_search

    toy = toy_search()
    assert toy["toy_keys"] == 720 * 64 and toy["toy_true_key_fits"]
    # exactly the true key's equivalence class (F flipped on whole cycles of P): nothing else fits
    assert toy["toy_keys_fitting"] == toy["toy_equivalent_keys"]
    # the prediction is the calculation's arithmetic on the measured rate (speed itself lives in bench/)
    assert toy["toy_predicted_seconds"] == pytest.approx(toy["toy_keys"] / toy["toy_trial_rate"])
    assert toy["toy_search_seconds"] > 0 and toy["toy_trial_rate"] > 0


def test_brute_force_reports_the_key_space_of_the_victims_setting():
    v = victim("tanaka")
    x = photos()
    a = attacks.create("brute_force", trial_seconds=0.1)
    a.prepare(access_for(v, (64, 64), known=(x[:1], v.encrypt(x[:1]))))
    s = a.summary()
    assert s["calculation"] and abs(s["key_space_log2"] - 498.0) < 1  # anchors.md §4
    assert s["trials_per_second"] > 0 and s["expected_log10_years"] > 100
    assert torch.equal(a.reconstruct(v.encrypt(x)).images, v.encrypt(x))

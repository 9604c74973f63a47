"""ScrambleMix: each scramble exact and invertible, the blend, deterministic views, the Beta sampler,
the key pool and its key file. Training with views: tests/train/test_scramblemix_training.py."""

import numpy as np
import pytest
import torch
from scipy import stats

from leia import ciphers
from leia.ciphers.keystream import KeyDeriver
from leia.ciphers.reference import skk, skk_inplace_loop
from leia.ciphers.scramblemix import beta_johnk
from leia.errors import InputError, KeyMismatchError, NotInvertibleError
from tests.helpers import random_images

IDS = [f"train/{i}" for i in range(6)]


@pytest.fixture(params=[True, False, "legacy_inplace"], ids=["shuffle", "no-shuffle", "legacy"])
def mix(request):
    return ciphers.create("scramblemix", seed=5, color_shuffle=request.param)


def test_each_scramble_is_the_skk_encryption_of_its_pool_member_and_inverts(mix):
    x = random_images((3,), 8, 12, seed=1)
    comps = mix.components(8, 12)
    assert comps["np"].shape == (8, 8, 12, 3) and comps["view_secret"].shape == (32,)
    for k in range(8):
        y = mix.scramble(x, k)
        color = comps["color"][k] if "color" in comps else None
        for i in range(3):
            img = x[i].permute(1, 2, 0).numpy()
            expected = (skk_inplace_loop(img, 1 - comps["np"][k].astype(np.int64), color)
                        if mix.params.color_shuffle == "legacy_inplace" else skk(img, comps["np"][k], color))
            assert np.array_equal(y[i].permute(1, 2, 0).numpy(), expected), (k, i)
        if mix.params.color_shuffle != "legacy_inplace":
            assert torch.equal(mix.unscramble(y, k), x)
    assert len({mix.scramble(x, k).numpy().tobytes() for k in range(8)}) == 8  # eight different keys
    with pytest.raises(InputError, match="has 8 pool members"):
        mix.scramble(x, 8)


def test_a_blend_with_m_0_or_1_is_one_scramble_and_in_between_lies_between(monkeypatch):
    mix = ciphers.create("scramblemix", seed=5)
    x = random_images((4,), 16, 16, seed=2)
    for weight, member in ((0, 0), (65536, 1)):
        monkeypatch.setattr(mix, "view_parameters",
                            lambda ids, views, h, w, wt=weight: (np.full((len(ids), len(views)), 2, np.int64),
                                                                 np.full((len(ids), len(views)), wt, np.int64)))
        views = mix.encrypt_views(x, IDS[:4], [0, 1])
        assert torch.equal(views[:, 0], mix.scramble(x, 4 + member)) and torch.equal(views[:, 1], views[:, 0])
    monkeypatch.setattr(mix, "view_parameters", lambda ids, views, h, w: (np.zeros((len(ids), 1), np.int64),
                                                                          np.full((len(ids), 1), 16384, np.int64)))
    a, b = mix.scramble(x, 0).int(), mix.scramble(x, 1).int()
    assert torch.equal(mix.encrypt(x, ids=IDS[:4]).int(), (3 * a + b + 2) // 4)  # m = 1/4, rounded half up


def test_a_view_is_a_function_of_secret_id_and_view_index():
    mix = ciphers.create("scramblemix", seed=5, alpha=1.0)  # alpha 1: blends are visible, not near-copies
    x = random_images((1,), 16, 16, seed=3).expand(6, -1, -1, -1)
    views = mix.encrypt_views(x, IDS, range(8))
    again = ciphers.create("scramblemix", seed=5, alpha=1.0).encrypt_views(x, IDS, range(8))
    assert torch.equal(views, again)  # same secret, ids, views: the same bytes (a fresh cipher)
    assert torch.equal(mix.encrypt(x, ids=IDS), views[:, 0])  # encrypt is view 0
    assert torch.equal(mix.encrypt_views(x[2:3], IDS[2:3], [5])[0, 0], views[2, 5])  # batch-independent
    flat = views.reshape(48, -1)
    assert len({row.numpy().tobytes() for row in flat}) == 48  # other views and other ids differ
    other = ciphers.create("scramblemix", seed=6, alpha=1.0).encrypt_views(x, IDS, range(8))
    assert not torch.equal(other, views)


def test_views_0_to_pairs_minus_1_of_an_image_use_every_pair_once():
    mix = ciphers.create("scramblemix", seed=0, pairs=4)
    pair, weight = mix.view_parameters(IDS, range(8), 32, 32)
    assert all(sorted(row[:4]) == [0, 1, 2, 3] and list(row[4:]) == list(row[:4]) for row in pair.tolist())
    assert len({row[0] for row in pair.tolist()}) > 1  # each image starts at its own pair
    assert ((0 <= weight) & (weight <= 65536)).all()


def test_views_are_fresh_every_epoch_in_training_and_fixed_at_test_time():
    mix = ciphers.create("scramblemix", seed=0, views=3, test_pairs=2)
    assert mix.views_for(True, 0) == [0, 1, 2] and mix.views_for(True, 2) == [6, 7, 8]
    assert mix.views_for(False, 0) == mix.views_for(False, 5) == [0, 1]
    assert ciphers.create("tanaka", seed=0).views_for(True, 0) is None


@pytest.mark.parametrize("alpha", [0.005, 0.5, 1.0])
def test_the_beta_sampler_draws_beta_alpha_alpha(alpha):
    root = KeyDeriver(b"beta test", "jöhnk")
    m = np.array([beta_johnk(root.stream(str(i)), alpha) for i in range(4000)])
    assert ((0 <= m) & (m <= 1)).all()
    beta = stats.beta(alpha, alpha)
    if alpha >= 0.5:
        assert stats.kstest(m, beta.cdf).pvalue > 1e-3
    else:  # the published setting: mass next to 0 and 1 (in float64 many draws are 0.0 or 1.0: no KS test)
        for inside, p in (((m > 0.01) & (m < 0.99), beta.cdf(0.99) - beta.cdf(0.01)), (m < 0.5, 0.5)):
            assert stats.binomtest(int(inside.sum()), len(m), p).pvalue > 1e-3


def test_the_key_file_holds_the_pool_and_the_view_secret_but_not_the_training_options(tmp_path):
    mix = ciphers.create("scramblemix", seed=5, views=2, kl_weight=0.5)
    key = mix.export_key((16, 16))
    assert set(key.components) == {"np", "color", "view_secret"}
    assert dict(key.params) == {"pairs": 4, "alpha": 0.005, "color_shuffle": True}
    mix.save_key(tmp_path / "mix.key", (16, 16))
    loaded = ciphers.create("scramblemix", key_file=str(tmp_path / "mix.key"), views=4)
    x = random_images((3,), 16, 16, seed=4)
    assert torch.equal(loaded.encrypt_views(x, IDS[:3], range(4)), mix.encrypt_views(x, IDS[:3], range(4)))
    assert loaded.fingerprint_for((16, 16)) == mix.fingerprint_for((16, 16))
    with pytest.raises(KeyMismatchError, match="pairs"):
        ciphers.create("scramblemix", key_file=str(tmp_path / "mix.key"), pairs=2)


def test_a_view_cannot_be_decrypted_and_ids_are_required():
    mix = ciphers.create("scramblemix", seed=5)
    x = random_images((2,), 8, 8)
    assert not mix.invertible and mix.needs_ids
    with pytest.raises(InputError, match="pass ids="):
        mix.encrypt(x)
    with pytest.raises(NotInvertibleError, match="cannot be decrypted"):
        mix.decrypt(mix.encrypt(x, ids=IDS[:2]), ids=IDS[:2])
    for bad, match in (({"pairs": 0}, "pairs must be an integer >= 1"), ({"alpha": 2}, r"alpha must be in \(0, 1\]"),
                       ({"views": 1.5}, "views must be"), ({"color_shuffle": "yes"}, "color_shuffle must be")):
        with pytest.raises(ValueError, match=match):
            ciphers.create("scramblemix", seed=0, **bad)

"""Per-image keys (skk key_mode=per_image): same id → same key, different ids → different keys,
a batch equals its images encrypted one by one; throw-away keys are fresh every time."""

import pytest
import torch

from leia import ciphers
from leia.errors import InputError, NotInvertibleError
from tests.helpers import random_images


def fold(v: torch.Tensor) -> torch.Tensor:
    return torch.minimum(v, 255 - v)


@pytest.fixture(params=[True, False], ids=["shuffle", "noshuffle"])
def per_image(request):
    return ciphers.create("skk", seed=9, key_mode="per_image", color_shuffle=request.param)


def test_same_id_same_key_and_different_ids_different_keys(per_image):
    x = random_images((1,), 16, 16)
    x4 = x.expand(4, 3, 16, 16).contiguous()
    with pytest.warns(UserWarning, match="share ids \\(p\\)"):
        y = per_image.encrypt(x4, ids=["p", "q", "p", 17])
    assert torch.equal(y[0], y[2])
    assert not torch.equal(y[0], y[1]) and not torch.equal(y[1], y[3])
    assert torch.equal(per_image.encrypt(x, ids=[17])[0], y[3])
    assert torch.equal(per_image.encrypt(x, ids=["17"])[0], y[3])  # ids are keyed by str()


def test_batch_equals_one_by_one_and_chunking_does_not_matter(per_image, monkeypatch):
    import leia.ciphers.base as base

    x = random_images((7,), 8, 12)
    ids = [f"train/{i}" for i in range(7)]
    batch = per_image.encrypt(x, ids=ids)
    single = torch.stack([per_image.encrypt(x[i], ids=ids[i]) for i in range(7)])
    assert torch.equal(batch, single)
    monkeypatch.setattr(base, "CHUNK", 3)
    fresh = ciphers.create("skk", seed=9, key_mode="per_image", color_shuffle=per_image.params.color_shuffle)
    assert torch.equal(fresh.encrypt(x, ids=ids), batch)
    assert torch.equal(fresh.decrypt(batch, ids=ids), x)


def test_per_image_key_of_id_equals_same_key_mode_under_that_derivation(per_image):
    """The per-image kernel and the compiled same-key gather agree for identical key material."""
    np_bits, color = per_image.per_image_components(8, 8, ["z"])
    same = ciphers.create("skk", seed=0, color_shuffle=per_image.params.color_shuffle)
    comps = {"np": np_bits[0]} if color is None else {"np": np_bits[0], "color": color[0]}
    same._components_cache[(8, 8)] = comps
    x = random_images((2,), 8, 8)
    assert torch.equal(same.encrypt(x), per_image.encrypt(x, ids=["z", "z"]))


def test_ids_are_required_and_must_match_the_batch(per_image):
    x = random_images((3,), 8, 8)
    with pytest.raises(InputError, match="needs ids="):
        per_image.encrypt(x)
    with pytest.raises(InputError, match="got 2 ids for a batch of 3"):
        per_image.encrypt(x, ids=[1, 2])
    with pytest.raises(InputError, match="ids= is only for skk"):
        ciphers.create("etc", seed=0).encrypt(x, ids=[1, 2, 3])
    # None, NaN or floats would give unrelated images one key
    for bad in ([None, None, None], [float("nan")] * 3, [0.5, 1.5, 2.5], torch.tensor([1.0, 2.0, 3.0]), [True, 1, 2]):
        with pytest.raises(InputError, match="ids must be str or int"):
            per_image.encrypt(x, ids=bad)


def test_key_cache_is_bounded(monkeypatch):
    c = ciphers.create("skk", seed=1, key_mode="per_image")
    monkeypatch.setattr(c, "key_cache_bytes", 4 * 8 * 8 * 10)
    x = random_images((50,), 8, 8)
    y = c.encrypt(x, ids=list(range(50)))
    assert len(c._per_image_cache) <= 10
    assert torch.equal(c.decrypt(y, ids=list(range(50))), x)  # evicted keys are derived again


def test_throwaway_keys_are_fresh_valid_and_undecryptable():
    c = ciphers.create("skk", key_mode="per_image", per_image_keys="random", color_shuffle=False)
    x = random_images((4,), 16, 16)
    a, b = c.encrypt(x), c.encrypt(x)
    assert not torch.equal(a, b)
    # without colour shuffling each pixel byte is q or 255 - q, whatever the key
    assert torch.equal(fold(a), fold(x)) and torch.equal(fold(b), fold(x))
    assert c.fingerprint == "throwaway"
    with pytest.raises(NotInvertibleError, match="never stored"):
        c.decrypt(a)
    with pytest.raises(InputError, match="ignores image ids"):
        c.encrypt(x, ids=[1, 2, 3, 4])

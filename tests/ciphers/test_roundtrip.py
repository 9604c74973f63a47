"""decrypt(encrypt(x)) == x bit-exactly for every registered scheme, shape and block size."""

import pytest
import torch

from leia import ciphers
from leia.errors import NotInvertibleError

from tests.helpers import CONFIGS, config_id, ids_for, make, random_images, sizes_for


@pytest.mark.parametrize("cfg", CONFIGS, ids=config_id)
def test_roundtrip_batches_and_single_images(cfg):
    name, params = cfg
    c = make(name, params)
    for h, w in sizes_for(c):
        for batch in [(4,), (2, 3), ()]:
            x = random_images(batch, h, w, seed=h * w)
            n = max(1, x[..., 0, 0, 0].numel())
            ids = ids_for(c, n)
            y = c.encrypt(x, ids=ids)
            assert y.dtype == torch.uint8 and y.device == x.device
            assert y.shape[:-3] == x.shape[:-3] and tuple(y.shape[-3:]) == c.cipher_shape(h, w)
            if not c.invertible:
                with pytest.raises(NotInvertibleError):
                    c.decrypt(y, ids=ids)
                continue
            assert torch.equal(c.decrypt(y, ids=ids), c.expected_roundtrip(x)), (h, w, batch)


@pytest.mark.parametrize("cfg", CONFIGS, ids=config_id)
def test_encryption_changes_the_image(cfg):
    name, params = cfg
    c = make(name, params)
    x = random_images((3,), 32, 32)
    y = c.encrypt(x, ids=ids_for(c, 3))
    changed = y.shape != x.shape or not torch.equal(y, x)
    assert changed == (name != "plain")


def test_only_documented_exceptions_are_lossy_or_not_invertible():
    """The invertibility contract has exactly the documented exceptions: grayscale EtC is lossy (its
    colour conversion), and the published-bug modes (legacy_inplace), throw-away keys and ScrambleMix's
    blends cannot decrypt."""
    lossy, not_invertible = [], []
    x = random_images((2,), 32, 32)
    for name, params in CONFIGS:
        c = make(name, params)
        if not c.invertible:
            not_invertible.append((name, params))
        elif not torch.equal(c.expected_roundtrip(x), x):
            lossy.append((name, params))
    assert all(p.get("grayscale") for n, p in lossy) and lossy  # YCbCr conversion of grayscale EtC
    assert sorted((n, p.get("key_mode", "same"), str(p.get("color_shuffle", p.get("per_image_keys"))))
                  for n, p in not_invertible) == [("etc", "same", "legacy_inplace"), ("scramblemix", "same", "False"), ("scramblemix", "same", "None"),
                                                  ("scramblemix", "same", "legacy_inplace"),
                                                  ("skk", "per_image", "legacy_inplace"),
                                                  ("skk", "per_image", "random"), ("skk", "same", "legacy_inplace")]


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c[0] != "plain"], ids=config_id)
def test_float_input_with_exact_8bit_values_roundtrips_in_float(cfg):
    name, params = cfg
    c = make(name, params)
    x8 = random_images((2,), 32, 32)
    x = x8.float() / 255
    ids = ids_for(c, 2)
    y = c.encrypt(x, ids=ids)
    assert y.dtype == torch.float32
    assert torch.allclose(y * 255, (y * 255).round(), atol=1e-3)
    if not c.uses_secret:
        return  # throw-away keys differ on every call; nothing to compare against
    assert torch.equal((y * 255).round().to(torch.uint8), c.encrypt(x8, ids=ids))
    if c.invertible:
        assert torch.equal((c.decrypt(y, ids=ids) * 255).round().to(torch.uint8), c.expected_roundtrip(x8))


def test_grayscale_etc_planes_are_exact_and_rgb_is_the_only_lossy_step():
    from leia.ciphers.color import rgb_to_ycbcr

    c = ciphers.create("etc", grayscale=True, block_size=4, seed=3)
    x = random_images((5,), 16, 24)
    y = c.encrypt(x)
    assert y.shape == (5, 1, 16, 72)
    assert torch.equal(c.decrypt_planes(y), rgb_to_ycbcr(x))
    # the RGB round trip error is the colour conversion's, at most a couple of levels
    assert (c.decrypt(y).int() - x.int()).abs().max() <= 3


def test_empty_batch():
    c = ciphers.create("tanaka", seed=0)
    x = torch.zeros(0, 3, 8, 8, dtype=torch.uint8)
    assert c.encrypt(x).shape == (0, 3, 8, 8)


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c[1].get("per_image_keys") != "random"], ids=config_id)
def test_chunked_processing_gives_the_same_bytes(cfg, monkeypatch):
    import leia.ciphers.base as base

    name, params = cfg
    c = make(name, params)
    x = random_images((7,), 2 * c.block_size, 2 * c.block_size)
    ids = ids_for(c, 7)
    whole = c.encrypt(x, ids=ids)
    monkeypatch.setattr(base, "CHUNK", 3)
    assert torch.equal(c.encrypt(x, ids=ids), whole)
    if c.invertible:
        assert torch.equal(c.decrypt(whole, ids=ids), c.expected_roundtrip(x))

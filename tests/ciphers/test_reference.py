"""Bit-exactness: the original LE implementation's reference vector, and every scheme's compiled
gather kernel against an independent per-image numpy implementation under the same key."""

import numpy as np
import pytest
import torch

from leia import ciphers
from leia.ciphers.reference import encrypt_image
from leia.ciphers.tanaka import derived_flip
from tests.helpers import CONFIGS, TANAKA_VECTOR, config_id, make, random_images

# Throw-away per-image keys are drawn anew on every call, so they have no reference to compare
# against; the derived per-image mode runs the same kernel.
KEYED = [c for c in CONFIGS if c[1].get("per_image_keys") != "random"]


@pytest.fixture(scope="module")
def vector():
    return np.load(TANAKA_VECTOR)


def chw(a):
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()


def test_tanaka_reproduces_the_reference_vector_bit_for_bit(vector):
    assert tuple(vector["block_size"]) == (4, 4, 3)
    c = ciphers.create("tanaka", permutation=vector["key"])
    assert c.block_size == 4 and c.params.flip == "derived"
    y = c.encrypt(chw(vector["plain"]))
    assert torch.equal(y, chw(vector["cipher"]))
    assert torch.equal(c.decrypt(y), chw(vector["plain"]))


def test_reference_key_flips_47_of_96_positions(vector):
    f = derived_flip(np.asarray(vector["key"]))
    assert f.size == 96 and int(f.sum()) == 47


def test_reference_key_roundtrips_through_a_key_file(vector, tmp_path):
    c = ciphers.create("tanaka", permutation=vector["key"])
    c.save_key(tmp_path / "le.key")
    loaded = ciphers.load(tmp_path / "le.key")
    assert torch.equal(loaded.encrypt(chw(vector["plain"])), chw(vector["cipher"]))
    assert loaded.fingerprint == c.fingerprint


@pytest.mark.parametrize("cfg", KEYED, ids=config_id)
def test_compiled_kernel_matches_per_image_numpy_reference(cfg):
    name, params = cfg
    c = make(name, params, seed=7)
    m = c.block_size
    h, w = (2 * m, 3 * m) if m >= 8 else (32, 24)
    x = random_images((3,), h, w, seed=11)
    ids = ["a", "b", "c"] if c.needs_ids else None
    y = c.encrypt(x, ids=ids)
    for i in range(3):
        img = x[i].permute(1, 2, 0).numpy()
        expected = encrypt_image(c, img, image_id=ids[i] if ids else None)
        assert np.array_equal(y[i].permute(1, 2, 0).numpy(), expected), f"image {i}"
        if c.invertible:
            back = encrypt_image(c, expected, image_id=ids[i] if ids else None, decrypt=True)
            target = c.decrypt_planes(y[i]).permute(1, 2, 0).numpy() if params.get("grayscale") else img
            if params.get("grayscale"):
                back = np.concatenate(np.split(back, 3, axis=1), axis=2)
            assert np.array_equal(back, target)


def test_legacy_inplace_shuffle_duplicates_a_channel_for_five_of_six_codes():
    from leia.ciphers.layout import LEGACY_SOURCES

    duplicating = [len(set(src.tolist())) < 3 for src in LEGACY_SOURCES]
    assert sum(duplicating) == 5 and not duplicating[0]


def test_scramblemix_pixel_loop_as_its_code_runs_it():
    """Their loop on one pixel (r, g, b) = (10, 20, 30) with NP off, code by code, worked out by hand
    from Python's evaluation order (right-hand views first, then assignments left to right)."""
    from leia.ciphers.reference import skk_inplace_loop

    r, g, b = 10, 20, 30
    expected = [(r, g, b), (r, b, b), (g, g, b), (g, b, g), (b, b, b), (b, g, b)]
    pixel = np.array([[[r, g, b]]], dtype=np.uint8)
    for code, want in enumerate(expected):
        got = skk_inplace_loop(pixel, np.ones((1, 1, 3), np.int64), np.array([[code]]))
        assert tuple(got[0, 0]) == want, code
    assert tuple(skk_inplace_loop(pixel, np.zeros((1, 1, 3), np.int64), np.array([[0]]))[0, 0]) == (245, 235, 225)


def test_skk_legacy_mode_is_the_scramblemix_loop_and_differs_from_the_correct_shuffle():
    x = random_images((1,), 64, 64, seed=3)
    right, legacy = (ciphers.create("skk", seed=4, color_shuffle=c) for c in (True, "legacy_inplace"))
    y = legacy.encrypt(x)
    assert np.array_equal(y[0].permute(1, 2, 0).numpy(), encrypt_image(legacy, x[0].permute(1, 2, 0).numpy()))
    differ = int((y != right.encrypt(x)).sum())
    assert 3900 < differ < 4100  # one byte per pixel on average: (0 + 1 + 1 + 1 + 2 + 1) / 6 of 4,096 pixels
    assert legacy.fingerprint_for((64, 64)) != right.fingerprint_for((64, 64))  # the mode is part of the key
    with pytest.raises(ciphers.NotInvertibleError):
        legacy.decrypt(y)
    with pytest.raises(Exception, match="color_shuffle must be true, false or legacy_inplace, got 'inplace'"):
        ciphers.create("skk", seed=0, color_shuffle="inplace")


def test_libjpeg_ycbcr_agrees_with_pillow():
    from PIL import Image

    from leia.ciphers.color import rgb_to_ycbcr

    x = random_images((), 64, 64, seed=5)
    ours = rgb_to_ycbcr(x).permute(1, 2, 0).numpy().astype(int)
    pil = np.asarray(Image.fromarray(x.permute(1, 2, 0).numpy()).convert("YCbCr")).astype(int)
    assert np.abs(ours - pil).max() <= 1

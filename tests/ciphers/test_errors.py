"""Bad input raises an error that names what was wrong and what was expected."""

import numpy as np
import pytest
import torch

from leia import ciphers
from leia.errors import ImageDtypeError, ImageFormatError, UnknownNameError
from tests.helpers import CONFIGS, config_id, ids_for, make, random_images


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if make(*c).block_size > 1], ids=config_id)  # pixel-wise: any size
def test_size_not_divisible_by_the_block_size(cfg):
    name, params = cfg
    c = make(name, params)
    m = c.block_size
    with pytest.raises(ImageFormatError, match=rf"not divisible by the block size {m}.*multiples of {m}"):
        c.encrypt(random_images((2,), 2 * m + 1, 2 * m))


@pytest.mark.parametrize("cfg", CONFIGS, ids=config_id)
def test_wrong_channel_count_and_dtype(cfg):
    name, params = cfg
    c = make(name, params)
    m = c.block_size
    ids = ids_for(c, 2)
    with pytest.raises(ImageFormatError, match=r"expected 3 colour channels at dim -3"):
        c.encrypt(torch.zeros(2, 1, m, m, dtype=torch.uint8), ids=ids)
    with pytest.raises(ImageFormatError, match="channel-last"):
        c.encrypt(torch.zeros(2, 4 * m, 4 * m, 3, dtype=torch.uint8), ids=ids)
    with pytest.raises(ImageDtypeError, match="expected dtype uint8"):
        c.encrypt(torch.zeros(2, 3, m, m, dtype=torch.int64), ids=ids)
    with pytest.raises(ImageDtypeError, match="exact 8-bit values"):
        c.encrypt(torch.full((2, 3, m, m), 0.5), ids=ids)  # 127.5 is not a byte
    with pytest.raises(ImageDtypeError, match="torch.Tensor"):
        c.encrypt(np.zeros((3, m, m), np.uint8), ids=ids)


@pytest.mark.parametrize("value", [1.5, -0.2, float("nan"), 0.5004])
def test_float_values_outside_8bit_are_refused_never_truncated(value):
    c = ciphers.create("tanaka", seed=0)
    x = torch.zeros(1, 3, 4, 4)
    x[0, 0, 0, 0] = value
    with pytest.raises(ImageDtypeError, match="k/255"):
        c.encrypt(x)


def test_unknown_scheme_and_parameters():
    with pytest.raises(UnknownNameError, match=r"unknown scheme 'skkk'; registered schemes: ele, etc, plain, scramblemix, skk"):
        ciphers.create("skkk", seed=0)
    with pytest.raises(UnknownNameError, match=r"unknown parameter 'blocksize' for scheme 'etc'.*block_size"):
        ciphers.create("etc", seed=0, blocksize=4)
    with pytest.raises(ValueError, match="block_size must be an integer >= 1"):
        ciphers.create("etc", seed=0, block_size=0)
    with pytest.raises(ValueError, match="flip must be one of derived, independent"):
        ciphers.create("tanaka", seed=0, flip="maybe")
    with pytest.raises(ValueError, match="key_mode must be one of same, per_image"):
        ciphers.create("skk", seed=0, key_mode="per-image")
    with pytest.raises(ValueError, match="grayscale-based EtC has no colour shuffle"):
        ciphers.create("etc", seed=0, grayscale=True, color_shuffle="legacy_inplace")


def test_decrypt_checks_the_ciphertext_shape():
    c = ciphers.create("etc", seed=0, grayscale=True)
    with pytest.raises(ImageFormatError, match="expected 1 colour channel at dim -3"):
        c.decrypt(random_images((1,), 8, 8))
    with pytest.raises(ImageFormatError, match="3×"):
        c.decrypt(torch.zeros(1, 1, 8, 20, dtype=torch.uint8))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_images_holding_k_over_255_are_accepted_and_round_back(dtype):
    c = ciphers.create("etc", seed=0)
    x8 = torch.arange(256, dtype=torch.uint8).repeat(3 * 4).reshape(4, 3, 16, 16)
    x = (x8.double() / 255).to(dtype)  # every byte value, as that dtype stores k/255
    y = c.encrypt(x)
    assert y.dtype == dtype and torch.equal((y.double() * 255).round().to(torch.uint8), c.encrypt(x8))
    assert torch.equal(c.decrypt(y), x)
    off = x.clone()
    off[0, 0, 0, 1] = 0.5  # 127.5: no byte
    with pytest.raises(ImageDtypeError, match="k/255"):
        c.encrypt(off)


def test_a_key_too_large_to_compile_names_the_size_and_the_memory(monkeypatch):
    c = ciphers.create("etc", seed=0)

    def out_of_memory(*_):
        raise MemoryError

    monkeypatch.setattr(c, "compile", out_of_memory)
    with pytest.raises(ImageFormatError, match=r"4096x4096 images needs about 4.7 GiB .*tiles"):
        c.maps(4096, 4096)

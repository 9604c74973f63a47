"""CPU and GPU give identical ciphertexts (runs where a CUDA device exists)."""

import torch

from tests.helpers import CONFIGS, config_id, cuda, ids_for, make, random_images

import pytest

KEYED = [c for c in CONFIGS if c[1].get("per_image_keys") != "random"]


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize("cfg", KEYED, ids=config_id)
def test_cpu_and_gpu_ciphertexts_are_identical(cfg):
    name, params = cfg
    c = make(name, params, seed=13)
    m = c.block_size
    x = random_images((5,), 4 * m, 2 * m)
    ids = ids_for(c, 5)
    y_cpu = c.encrypt(x, ids=ids)
    y_gpu = c.encrypt(x.cuda(), ids=ids)
    assert y_gpu.device.type == "cuda"
    assert torch.equal(y_gpu.cpu(), y_cpu)
    if c.invertible:
        assert torch.equal(c.decrypt(y_gpu, ids=ids).cpu(), c.expected_roundtrip(x))


@cuda
@pytest.mark.gpu
def test_throwaway_keys_work_on_gpu():
    c = make("skk", {"key_mode": "per_image", "per_image_keys": "random", "color_shuffle": False})
    x = random_images((3,), 8, 8).cuda()
    y = c.encrypt(x)
    assert y.device.type == "cuda" and torch.equal(torch.minimum(y, 255 - y), torch.minimum(x, 255 - x))

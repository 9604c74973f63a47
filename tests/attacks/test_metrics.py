"""SSIM is computed in float32 even under mixed precision (trainer=gpu runs the attack task under
16-mixed autocast, which scored byte-exact reconstructions as low as 0.48)."""

import torch

from leia.attacks.metrics import ssim
from tests.attacks.helpers import cifar


def test_ssim_of_exact_images_is_one_under_fp16_autocast():
    images = cifar()[0][:64]
    with torch.autocast("cpu", dtype=torch.float16):
        scores = ssim(images, images)
    assert scores.dtype == torch.float32 and torch.equal(scores, ssim(images, images)) and scores.min() > 0.999

"""SSIM is computed in float32 even under mixed precision (trainer=gpu runs the attack task under
16-mixed autocast, which scored byte-exact reconstructions as low as 0.48)."""

import pytest
import torch

from leia.attacks.metrics import ssim
from tests.attacks.helpers import cifar


def test_ssim_of_exact_images_is_one_under_fp16_autocast():
    images = cifar()[0][:64]
    with torch.autocast("cpu", dtype=torch.float16):
        scores = ssim(images, images)
    assert scores.dtype == torch.float32 and torch.equal(scores, ssim(images, images)) and scores.min() > 0.999


def test_lpips_loads_local_alexnet_weights_and_runs_beside_ssim(tmp_path):
    """The loading path only: the weights here are torchvision's random initialisation, written by
    the test, so the LPIPS values are not meaningful LPIPS numbers and nothing asserts on their size
    beyond what any distance satisfies."""
    import torchvision

    from leia.attacks.lpips import LPIPS
    from leia.errors import InputError
    torch.manual_seed(0)
    weights = tmp_path / "alexnet.pt"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), weights)
    lpips = LPIPS(str(weights))
    images = cifar()[0][:6]
    same, other = lpips(images, images), lpips(images, images.flip(0))
    assert same.shape == (6,) and torch.allclose(same, torch.zeros(6), atol=1e-6) and (other > 0).all()
    conv = lpips.model.net.slice1[0].weight
    assert torch.equal(conv, torch.load(weights)["features.0.weight"])  # the file's backbone, not a download

    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet.pt")
    with pytest.raises(InputError, match="is not a torchvision AlexNet state_dict: missing features.0.weight"):
        LPIPS(str(tmp_path / "resnet.pt"))
    with pytest.raises(InputError, match="no such file"):
        LPIPS(str(tmp_path / "nothing.pt"))


@pytest.mark.slow
def test_attack_runs_report_lpips_with_weights_and_say_why_not_without(tmp_path):
    import torchvision

    from tests.helpers import ATTACK_FAST, run_attack

    weights = tmp_path / "alexnet.pt"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), weights)  # not meaningful values
    metrics, _ = run_attack(["attack=skk_greedy", f"metrics.lpips_weights={weights}", *ATTACK_FAST], tmp_path / "a")
    assert "lpips" in metrics["metrics"] and "lpips" in metrics["baseline_encrypted"] and metrics["not_computed"] == {}
    metrics, _ = run_attack(["attack=skk_greedy", *ATTACK_FAST], tmp_path / "b")
    assert "lpips" not in metrics["metrics"] and "lpips_weights" in metrics["not_computed"]["lpips"]

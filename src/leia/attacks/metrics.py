"""Reconstruction quality, per image, as every attack reports it (attacks.md).

- SSIM: Gaussian window 11×11, σ = 1.5, data range 255, K1 = 0.01, K2 = 0.03 (Wang et al. 2004), on
  the RGB image (mean over channels) and on its BT.601 luma (grayscale SSIM).
- PSNR in dB with peak 255; an exact reconstruction has infinite PSNR, reported as PSNR_CAP.
- exact-byte rate: fraction of the 3HW bytes equal to the plain image's.
- LPIPS (AlexNet), where the user gives local AlexNet weights (`metrics.lpips_weights`, lpips.py).
Aggregation over images is done with torchmetrics' MeanMetric by the attack task.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

SSIM_WINDOW, SSIM_SIGMA, DATA_RANGE = 11, 1.5, 255.0
PSNR_CAP = 100.0  # dB, reported for exact reconstructions (mean squared error 0)
LUMA = (0.299, 0.587, 0.114)


def luma(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] -> float [B, 1, H, W] BT.601 luma (unrounded)."""
    w = torch.tensor(LUMA, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    return (x.double() * w).sum(1, keepdim=True)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of uint8 or 0..255 float images [B, C, H, W] (mean over channels)."""
    size = min(SSIM_WINDOW, *pred.shape[-2:]) | 1  # odd window no larger than the image
    # Computed on x/255 with data range 1 in float32 (the same SSIM; float64 convolutions are ~50x slower).
    # Autocast off: under trainer=gpu's 16-mixed precision fp16 convolutions scored an exact image 0.48.
    with torch.autocast(pred.device.type, enabled=False):
        return _ssim(pred, target, size)


def _ssim(pred: torch.Tensor, target: torch.Tensor, size: int) -> torch.Tensor:
    return structural_similarity_index_measure(
        pred.float() / DATA_RANGE, target.float() / DATA_RANGE, gaussian_kernel=True, sigma=SSIM_SIGMA,
        kernel_size=size, data_range=1.0, reduction="none",
    )


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(1)
    out = 10 * torch.log10(DATA_RANGE**2 / mse.clamp_min(1e-12))
    return torch.where(mse == 0, torch.full_like(out, PSNR_CAP), out.clamp(max=PSNR_CAP)).float()


def exact_bytes(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred == target).flatten(1).float().mean(1)


def image_metrics(pred: torch.Tensor, target: torch.Tensor, extra: dict | None = None) -> dict[str, torch.Tensor]:
    """All per-image quality metrics of uint8 reconstructions `pred` against plain `target`; `extra`
    adds metrics that need weights (name -> (pred, target) -> per-image values, e.g. LPIPS)."""
    return {
        "ssim": ssim(pred, target),
        "ssim_gray": ssim(luma(pred), luma(target)),
        "psnr": psnr(pred, target),
        "exact_bytes": exact_bytes(pred, target),
        **{name: fn(pred, target) for name, fn in (extra or {}).items()},
    }

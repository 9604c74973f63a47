"""Full-range BT.601 YCbCr as JPEG does it, in libjpeg's 16-bit fixed point (jccolor.c / jdcolor.c).

Integer arithmetic gives the same bytes on every device, which float conversions do not promise.
RGB -> YCbCr -> RGB is lossy (rounding); everything the grayscale EtC cipher does after it is exact.
"""

from __future__ import annotations

import torch

_SCALE = 16
_HALF = 1 << (_SCALE - 1)
_OFFSET = 128 << _SCALE


def _fix(x: float) -> int:
    return int(x * (1 << _SCALE) + 0.5)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """uint8 [..., 3, H, W] RGB -> uint8 [..., 3, H, W] YCbCr (no clamping needed: libjpeg's
    coefficients keep every result in 0..255)."""
    r, g, b = x.to(torch.int32).unbind(-3)
    y = (_fix(0.29900) * r + _fix(0.58700) * g + _fix(0.11400) * b + _HALF) >> _SCALE
    cb = (-_fix(0.16874) * r - _fix(0.33126) * g + _fix(0.5) * b + _OFFSET + _HALF - 1) >> _SCALE
    cr = (_fix(0.5) * r - _fix(0.41869) * g - _fix(0.08131) * b + _OFFSET + _HALF - 1) >> _SCALE
    return torch.stack([y, cb, cr], dim=-3).to(torch.uint8)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """uint8 [..., 3, H, W] YCbCr -> uint8 RGB, rounded and clamped as libjpeg does."""
    y, cb, cr = x.to(torch.int32).unbind(-3)
    cb, cr = cb - 128, cr - 128
    r = y + ((_fix(1.40200) * cr + _HALF) >> _SCALE)
    g = y + ((-_fix(0.34414) * cb - _fix(0.71414) * cr + _HALF) >> _SCALE)
    b = y + ((_fix(1.77200) * cb + _HALF) >> _SCALE)
    return torch.stack([r, g, b], dim=-3).clamp_(0, 255).to(torch.uint8)

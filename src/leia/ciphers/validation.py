"""Input checks shared by every cipher. Nothing is silently converted: a float image is accepted only
when it holds exact 8-bit values k/255, to the precision of its dtype (float16 and bfloat16 hold
every k/255 closely enough to round back exactly), because the reference float wrapper truncates,
a known trap."""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import ImageDtypeError, ImageFormatError, InputError, KeyMismatchError

# Tolerance on x*255 in 8-bit steps: float32 k/255 is off by ~1e-5 steps; more means not 8-bit data.
FLOAT_TOLERANCE = 1e-3


def describe(x: torch.Tensor) -> str:
    return f"shape {tuple(x.shape)}, dtype {x.dtype}"


def to_uint8(x, *, channels: int, what: str) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Check an image batch [..., channels, H, W]; return it as uint8 and a function that converts
    a uint8 result back to the caller's dtype."""
    if not isinstance(x, torch.Tensor):
        hint = " (for a numpy HWC array use torch.from_numpy(a).permute(2, 0, 1))" if hasattr(x, "__array__") else ""
        raise ImageDtypeError(f"{what}: expected a torch.Tensor shaped [..., {channels}, H, W], got {type(x).__name__}{hint}")
    if x.ndim < 3 or x.shape[-3] != channels:
        hint = ""
        if x.ndim >= 3 and x.shape[-1] == channels and x.shape[-3] != channels:
            hint = "; this looks channel-last (HWC): permute to channel-first"
        raise ImageFormatError(
            f"{what}: expected {channels} colour channel{'s' if channels > 1 else ''} at dim -3 "
            f"(layout [..., {channels}, H, W]), got {describe(x)}{hint}"
        )
    if x.dtype == torch.uint8:
        return x, lambda y: y
    if x.is_floating_point():
        scaled = x.detach().to(torch.float64) * 255.0
        rounded = scaled.round()
        # k/255 stored in x.dtype is off by at most half a unit in the last place (eps/4 in [0.5, 1]):
        # 0.06 steps in float16, 0.498 in bfloat16, which still round back to k.
        tolerance = max(FLOAT_TOLERANCE, 255.0 * torch.finfo(x.dtype).eps / 4 * 1.001)
        bad = ~((scaled - rounded).abs() <= tolerance) | (rounded < 0) | (rounded > 255)
        if bool(bad.any()):
            value = float(x.detach().reshape(-1)[bad.reshape(-1).nonzero()[0, 0]])
            raise ImageDtypeError(
                f"{what}: float input must hold exact 8-bit values k/255 in [0, 1]; found {value!r} "
                f"(x*255 = {value * 255:.4f}). Convert explicitly, e.g. (x*255).round().to(torch.uint8)"
            )
        dtype = x.dtype
        return rounded.to(torch.uint8), lambda y: y.to(dtype) / 255.0
    raise ImageDtypeError(
        f"{what}: expected dtype uint8 (or float holding exact values k/255 in [0, 1]), got {x.dtype}"
    )


def check_block_size(h: int, w: int, block: int, scheme: str) -> None:
    if block < 1:
        raise ImageFormatError(f"{scheme}: block size must be >= 1, got {block}")
    if h % block or w % block:
        raise ImageFormatError(
            f"{scheme}: image size {h}x{w} is not divisible by the block size {block}; "
            f"height and width must be multiples of {block} (e.g. pad or crop to "
            f"{h - h % block or block}x{w - w % block or block})"
        )


def normalise_ids(ids, batch: int, scheme: str) -> list[str]:
    """One stable identifier per image; ints and strings are keyed by their str() form."""
    if ids is None:
        raise InputError(
            f"{scheme} with per-image keys needs ids=: one stable identifier (int or str) per image"
        )
    if isinstance(ids, torch.Tensor):
        ids = ids.reshape(-1).tolist()
    elif isinstance(ids, (str, int)):
        ids = [ids]
    elif not isinstance(ids, Sequence):
        ids = list(ids)
    if len(ids) != batch:
        raise InputError(f"{scheme}: got {len(ids)} ids for a batch of {batch} images; give one id per image")
    bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, (str, int, np.integer))]
    if bad:  # None, NaN or a float would give unrelated images one key
        raise InputError(f"{scheme}: image ids must be str or int (one stable identifier per image), got "
                         f"{type(bad[0]).__name__} {bad[0]!r}")
    keys = [str(i) for i in ids]
    if len(set(keys)) < len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1})[:3]
        warnings.warn(f"{scheme}: images of one batch share ids ({', '.join(repeated)}), and so their per-image "
                      f"keys", stacklevel=4)
    return keys


# ---- key components (explicit keys are checked before they are compiled) ----
def check_permutation(p: np.ndarray, length: int, what: str, scheme: str) -> None:
    if p.shape[-1:] != (length,) or not np.array_equal(np.sort(p, axis=-1), np.broadcast_to(np.arange(length), p.shape)):
        raise KeyMismatchError(f"{scheme} key: {what} must be permutations of 0..{length - 1} (shape [..., {length}])")


def check_bits(f: np.ndarray, shape: tuple, what: str, scheme: str) -> None:
    if f.shape != shape or not np.isin(f, (0, 1)).all():
        raise KeyMismatchError(f"{scheme} key: {what} must be 0/1 values of shape {list(shape)}")

"""Ways to put a cipher into a pipeline.

- `CipherTransform`: a torchvision v2 transform for dataset pipelines (encryption in the data
  owner's workers). Per-image keys need the image id: pass a dict sample {"image": ..., "id": ...}.
- `BatchCipher`: an nn.Module that encrypts whole batches on the device they are on (after
  transfer). It registers no parameters or buffers, so key material never reaches a state_dict or
  a checkpoint; compiled maps live in the cipher's own cache.
"""

from __future__ import annotations

from typing import Any

import PIL.Image
import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..errors import InputError
from .base import Cipher


class CipherTransform(v2.Transform):
    """Encrypt (or, with inverse=True, decrypt) the image of a sample."""

    _transformed_types = (tv_tensors.Image, torch.Tensor)

    def __init__(self, cipher: Cipher, inverse: bool = False):
        super().__init__()
        self.cipher = cipher
        self.inverse = inverse
        self._ids: list | None = None

    def extra_repr(self) -> str:
        return f"{self.cipher!r}, inverse={self.inverse}"

    def check_inputs(self, flat_inputs: list[Any]) -> None:
        if any(isinstance(i, PIL.Image.Image) for i in flat_inputs):
            raise InputError("CipherTransform works on uint8 tensors; put v2.PILToTensor() (or v2.ToImage()) before it")

    def forward(self, *inputs: Any) -> Any:
        sample = inputs if len(inputs) > 1 else inputs[0]
        if self.cipher.needs_ids:
            if not (isinstance(sample, dict) and "id" in sample):
                raise InputError(
                    f"{self.cipher.name} with per-image keys needs the image id: pass a dict sample "
                    "{'image': <tensor>, 'id': <stable id>}"
                )
            self._ids = [sample["id"]]
        try:
            return super().forward(*inputs)
        finally:
            self._ids = None

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        data = inpt.as_subclass(torch.Tensor)
        ids = self._ids
        if ids is not None and data.ndim > 3:
            raise InputError("CipherTransform with per-image keys encrypts one image per sample")
        fn = self.cipher.decrypt if self.inverse else self.cipher.encrypt
        out = fn(data, ids=ids)
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out


class BatchCipher(nn.Module):
    """Encrypt a batch [B, 3, H, W] where it lives (GPU or CPU); `inverse=True` decrypts."""

    def __init__(self, cipher: Cipher, inverse: bool = False):
        super().__init__()
        self.cipher = cipher
        self.inverse = inverse

    def extra_repr(self) -> str:
        return f"{self.cipher!r}, inverse={self.inverse}"

    @torch.no_grad()
    def forward(self, x: torch.Tensor, ids=None) -> torch.Tensor:
        return (self.cipher.decrypt if self.inverse else self.cipher.encrypt)(x, ids=ids)

"""LPIPS (Zhang et al. 2018, AlexNet variant), the metric of the SIA-GAN anchor (anchors.md §2).

torchmetrics ships LPIPS's linear layers; its AlexNet backbone would be downloaded from
torchvision, which leia never does implicitly. `metrics.lpips_weights=<file>` names a local
torchvision AlexNet state_dict (`torchvision.models.alexnet(weights=...).state_dict()` saved with
torch.save); its `features.*` tensors become the backbone. Without it, attack runs say in
metrics.json that LPIPS was not computed, and why.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError

# torchvision AlexNet `features` index -> torchmetrics' LPIPS slice holding that layer
_SLICES = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
NOT_COMPUTED = ("not computed: set metrics.lpips_weights to a local torchvision AlexNet state_dict "
                "(leia never downloads weights)")


class LPIPS:
    """Per-image LPIPS distance of uint8 images [B, 3, H, W] (lower: more alike)."""

    def __init__(self, weights: str):
        from torchmetrics.functional.image.lpips import _LPIPS

        path = Path(weights).expanduser()
        if not path.is_file():
            raise InputError(f"metrics.lpips_weights={weights}: no such file; expected a torchvision AlexNet "
                             f"state_dict saved with torch.save")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # not a torch file, or truncated
            raise InputError(f"metrics.lpips_weights={weights} is not a readable torch state_dict ({e})") from None
        self.model = _LPIPS(pretrained=True, net="alex", pnet_rand=True)  # linear layers: torchmetrics' own
        backbone = self.model.net
        wanted = {f"features.{i}.{p}": getattr(getattr(backbone, f"slice{s}"), str(i))  # slices keep features names
                  for i, s in _SLICES.items() for p in ("weight", "bias")}
        missing = [k for k in wanted if k not in state]
        if missing:
            raise InputError(f"metrics.lpips_weights={weights} is not a torchvision AlexNet state_dict: "
                             f"missing {', '.join(missing[:4])}")
        for key, layer in wanted.items():
            param = getattr(layer, key.rsplit(".", 1)[1])
            if state[key].shape != param.shape:
                raise InputError(f"metrics.lpips_weights={weights}: {key} has shape {tuple(state[key].shape)}, "
                                 f"AlexNet's is {tuple(param.shape)}")
            param.data.copy_(state[key])
        self.model.eval()

    @torch.no_grad()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.model.to(pred.device)
        with torch.autocast(pred.device.type, enabled=False):
            d = self.model(pred.float() / 255, target.float() / 255, normalize=True)
        return d.flatten()

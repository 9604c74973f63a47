"""Backbone registry: CIFAR ResNets, the fast VGG-like net, a CIFAR ConvMixer, and any timm model by name.

`create(name, num_classes, in_chans, image_size, **options)` builds one. Pretrained weights are never
downloaded implicitly: `pretrained: false` is the default, and `checkpoint=<path>` loads local
weights (a state dict, or a Lightning checkpoint whose keys start with "model.").
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..registry import Registry
from .resnet_cifar import resnet18_cifar, resnet20

BACKBONES: Registry = Registry("backbone")

# Backbones that cut the input into patches: their patch size must equal a patch-wise scheme's block size.
PATCH_MODELS = ("convmixer",)


def is_patch_model(name: str, options: dict) -> bool:
    return name in PATCH_MODELS or (name == "timm" and _timm_embeds_patches(options.get("model_name", "")))


@lru_cache(maxsize=None)
def _timm_embeds_patches(model_name: str) -> bool:
    """Whether a timm model cuts its input into patches and takes img_size/patch_size: timm's
    patch-embedding models (ViT, DeiT, Swin, ...) carry a `patch_embed` module, and its ConvMixer
    takes patch_size for its stem. Built on the meta device to look, which allocates no weights;
    the name alone would be a guess."""
    import timm

    if model_name not in timm.list_models():
        return False
    with torch.device("meta"):
        model = timm.create_model(model_name, pretrained=False)
    return hasattr(model, "patch_embed") or type(model).__name__ == "ConvMixer"


@BACKBONES.register("resnet18_cifar")
def _resnet18(num_classes: int, in_chans: int, image_size, **_) -> nn.Module:
    return resnet18_cifar(num_classes, in_chans)


@BACKBONES.register("resnet20")
def _resnet20(num_classes: int, in_chans: int, image_size, **_) -> nn.Module:
    return resnet20(num_classes, in_chans)


@BACKBONES.register("fastnet")
def _fastnet(num_classes: int, in_chans: int, image_size, widths=(64, 256, 256), **options) -> nn.Module:
    """The fast VGG-like net of `fast_cifar10` (models/fastnet.py); its stem is chosen per scheme."""
    from .fastnet import FastNet

    return FastNet(num_classes, in_chans, tuple(widths), **options)


@BACKBONES.register("convmixer")
def _convmixer(num_classes: int, in_chans: int, image_size, dim: int = 256, depth: int = 8,
               kernel_size: int = 5, patch_size: int = 4, **_) -> nn.Module:
    """ConvMixer-dim/depth (Trockman & Kolter) through timm's class, e.g. ConvMixer-256/8 for CIFAR."""
    from timm.models.convmixer import ConvMixer

    return ConvMixer(dim=dim, depth=depth, kernel_size=kernel_size, patch_size=patch_size,
                     in_chans=in_chans, num_classes=num_classes, act_layer=nn.GELU)


@BACKBONES.register("timm")
def _timm(num_classes: int, in_chans: int, image_size, model_name: str = "", pretrained: bool = False,
          patch_size: int | None = None, **kwargs) -> nn.Module:
    import timm

    if not model_name:
        raise InputError("model.backbone=timm needs model.options.model_name (e.g. resnet18, vit_tiny_patch16_224)")
    if model_name not in timm.list_models():
        raise InputError(f"unknown timm model {model_name!r} (see timm.list_models())")
    if _timm_embeds_patches(model_name):
        kwargs.setdefault("img_size", tuple(image_size))
        if patch_size is not None:
            kwargs["patch_size"] = patch_size
    return timm.create_model(model_name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs)


def create_backbone(name: str, num_classes: int, in_chans: int, image_size, checkpoint: str | None = None, **options) -> nn.Module:
    model = BACKBONES.get(name)(num_classes=num_classes, in_chans=in_chans, image_size=image_size, **options)
    if checkpoint:
        load_weights(model, checkpoint)
    return model


def load_weights(model: nn.Module, path: str) -> None:
    """Load local weights: a plain state dict or a Lightning checkpoint (keys under "model.")."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"model checkpoint {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" in state:
        state = {k.removeprefix("model.backbone."): v for k, v in state["state_dict"].items() if k.startswith("model.backbone.")}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise InputError(f"{path} does not fit this backbone: {str(e).splitlines()[1].strip()}") from None
    if missing or unexpected:
        raise InputError(f"{path} does not fit this backbone: missing {missing[:5]}, unexpected {unexpected[:5]}")

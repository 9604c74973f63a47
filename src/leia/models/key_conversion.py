"""Model-side key conversion for vit_block (Qi, MaungMaung, Kinoshita, Kiya; MaungMaung & Kiya).

A vit_block ciphertext patch is the plain patch K1[i] with its 3M² values shuffled by K2 and some
NP-flipped. The patch embedding is linear, so with the key it can absorb the shuffle and the NP
(after normalisation NP is an affine map of each input value) into its weights and bias; the
position embeddings absorb the block scrambling. The converted model then gives on encrypted
images the logits the plain model gives on plain images, up to float rounding.

For the HWC-flattened patch index j (row, column, channel) with source i = K2[j], s_j = -1 where NP
flips, o_j = 1 there (else s_j = 1, o_j = 0), and per-channel normalisation (mean, std):
    W'[:, j] = W[:, i] · s_j · std[c(j)] / std[c(i)]
    b'       = b + Σ_j W[:, i] · (s_j · mean[c(j)] + o_j − mean[c(i)]) / std[c(i)]
    pos'[prefix + t] = pos[prefix + K1[t]]   (class/prefix tokens untouched)
ConvMixer mixes neighbouring patches with depthwise convolutions, so only the in-block part
(shuffle and NP) can be absorbed: it needs vit_block with scramble=false.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..ciphers import Cipher
from ..errors import InputError


def _channel_values(v, channels: int) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
    return t.expand(channels) if t.numel() == 1 else t


@torch.no_grad()
def convert_patch_embedding(conv: nn.Conv2d, cipher: Cipher, image_size, mean, std) -> None:
    """Rewrite a stride-M patch-embedding convolution in place so that it reads ciphertext patches."""
    m = cipher.block_size
    if conv.kernel_size != (m, m) or conv.stride != (m, m):
        raise InputError(f"the patch embedding is {conv.kernel_size} stride {conv.stride}, but the key's block size is {m}")
    comps = cipher.components(*image_size)
    k2 = torch.as_tensor(comps["pixel_perm"], dtype=torch.long)
    np_bits = torch.as_tensor(comps["np"], dtype=torch.float64) if cipher.params.np else torch.zeros(3 * m * m, dtype=torch.float64)
    mean, std = _channel_values(mean, 3), _channel_values(std, 3)
    d = conv.weight.shape[0]
    w = conv.weight.detach().to(torch.float64).permute(0, 2, 3, 1).reshape(d, -1)  # [D, 3M²] in (r, c, ch) order
    channel = torch.arange(3 * m * m) % 3
    c_j, c_i = channel, channel[k2]
    s = 1.0 - 2.0 * np_bits
    w_src = w[:, k2]
    w_new = w_src * (s * std[c_j] / std[c_i])
    shift = (s * mean[c_j] + np_bits - mean[c_i]) / std[c_i]
    bias = (conv.bias.detach().to(torch.float64) if conv.bias is not None else torch.zeros(d, dtype=torch.float64))
    bias = bias + w_src @ shift
    conv.weight.copy_(w_new.reshape(d, m, m, 3).permute(0, 3, 1, 2).to(conv.weight.dtype))
    if conv.bias is None:
        conv.bias = nn.Parameter(bias.to(conv.weight.dtype))
    else:
        conv.bias.copy_(bias.to(conv.bias.dtype))


@torch.no_grad()
def convert_vit(model: nn.Module, cipher: Cipher, image_size, mean, std) -> nn.Module:
    """A copy of a timm VisionTransformer that reads vit_block ciphertexts of `cipher`'s key."""
    model = copy.deepcopy(model)
    convert_patch_embedding(model.patch_embed.proj, cipher, image_size, mean, std)
    if cipher.params.scramble:
        k1 = torch.as_tensor(cipher.components(*image_size)["block_perm"], dtype=torch.long)
        prefix = 0 if getattr(model, "no_embed_class", False) else model.num_prefix_tokens
        pos = model.pos_embed.detach().clone()
        pos[:, prefix:] = pos[:, prefix:][:, k1]
        model.pos_embed.copy_(pos)
    return model


@torch.no_grad()
def convert_convmixer(model: nn.Module, cipher: Cipher, image_size, mean, std) -> nn.Module:
    if cipher.params.scramble:
        raise InputError(
            "ConvMixer mixes neighbouring patches with depthwise convolutions, so block scrambling cannot be "
            "absorbed into its weights; use vit_block with scramble=false (pixel shuffling and NP only)"
        )
    model = copy.deepcopy(model)
    convert_patch_embedding(model.stem[0], cipher, image_size, mean, std)
    return model


def _converters():
    from timm.models.convmixer import ConvMixer
    from timm.models.vision_transformer import VisionTransformer

    return {VisionTransformer: convert_vit, ConvMixer: convert_convmixer}


def convert(model: nn.Module, cipher: Cipher, image_size, mean=0.5, std=0.25) -> nn.Module:
    """Convert a plain-trained model for `cipher` (a vit_block key); the input is not modified."""
    if cipher.name != "vit_block":
        raise InputError(f"model-side key conversion is defined for vit_block keys, not {cipher.name!r}")
    for cls, fn in _converters().items():
        if isinstance(model, cls):
            return fn(model, cipher, image_size, mean, std)
    raise InputError(f"no key conversion for {type(model).__name__}; supported: VisionTransformer, ConvMixer")

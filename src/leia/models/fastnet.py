"""A fast VGG-like CIFAR network, written from the published description of Keller Jordan's
airbench (arXiv 2404.00498), not from its code: a frozen whitening stem fitted on the training
inputs, then three blocks of [3×3 conv -> 2×2 max-pool -> BN -> GELU -> 3×3 conv -> BN -> GELU],
a global max-pool and a linear head whose logits are scaled down. Two of airbench's options:
BN scales fixed at 1 (`train_bn_scale=False`) and convs that start as partial identities
(`identity_init`).

The stem is what learnable encryption changes:
- `whiten`: 2×2 patches, stride 1 (airbench's stem). Right for plain images and pixel-wise schemes
  (skk), whose pixels stay in place.
- `block`: M×M blocks at stride M, whitened, then a learned 1×1 conv to M²·c channels and a pixel
  shuffle back to full resolution. Block-wise schemes (tanaka, ele, etc) scramble within an M×M
  block with one key for every block, so a 2×2 patch straddles blocks while an M-aligned linear map
  can undo the scramble; this is the same idea as Tanaka's adaptation network.
- `learned`: a 2×2 conv trained like the rest, for inputs that are not images of the data set
  (the output of an adapter).
Whitening weights are the eigenvectors of the patch covariance, scaled by 1/sqrt(eigenvalue), in
± pairs (so that GELU keeps both signs). They are fitted once, on training ciphertexts, by
`fit(inputs)` before training starts, and stay frozen; their bias trains.
"""

from __future__ import annotations

import torch
from torch import nn

STEMS = ("whiten", "block", "learned")


@torch.no_grad()
def patch_spectrum(x: torch.Tensor, kernel: int, stride: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The mean, eigenvalues (ascending, float64) and eigenvectors of the covariance of the k×k
    patches (stride `stride`) of images x [B, C, H, W], each patch flattened channel-major."""
    patches = x.float().unfold(2, kernel, stride).unfold(3, kernel, stride)  # [B, C, h, w, k, k]
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, x.shape[1] * kernel * kernel)
    mean = patches.mean(0)
    patches = patches - mean
    cov = patches.T @ patches / max(1, len(patches) - 1)
    eigval, eigvec = torch.linalg.eigh(cov.double())
    return mean, eigval, eigvec


class WhiteningConv(nn.Conv2d):
    """A k×k conv (stride `stride`) to 2·C·k² channels whose weights whiten the k×k patches."""

    def __init__(self, in_chans: int, kernel: int, stride: int, eps: float = 5e-4):
        super().__init__(in_chans, 2 * in_chans * kernel * kernel, kernel, stride=stride, padding=0, bias=True)
        self.eps = eps
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        k, s = self.kernel_size[0], self.stride[0]
        mean, eigval, eigvec = patch_spectrum(x, k, s)
        w = (eigvec.T / torch.sqrt(eigval.clamp_min(0) + self.eps)[:, None]).float()
        w = w.flip(0).reshape(-1, self.in_channels, k, k)  # largest variance first
        w = torch.cat([w, -w])
        self.weight.copy_(w.to(self.weight.device))
        self.bias.copy_(-(w.flatten(1) @ mean).to(self.bias.device))  # centred outputs; the bias then trains


def batch_norm(channels: int, momentum: float, train_scale: bool) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, momentum=momentum)
    bn.weight.requires_grad_(train_scale)  # airbench keeps the scales at 1 and trains the biases alone
    return bn


@torch.no_grad()
def identity_init(conv: nn.Conv2d) -> None:
    """Airbench's partial identity: the first `in_channels` filters pass their input channel through
    unchanged (a centred 1 in the 3×3 kernel); the other filters keep their random initialisation."""
    nn.init.dirac_(conv.weight[: min(conv.in_channels, conv.out_channels)])


class ConvGroup(nn.Sequential):
    def __init__(self, cin: int, cout: int, bn_momentum: float, train_bn_scale: bool = True,
                 identity: bool = False):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            batch_norm(cout, bn_momentum, train_bn_scale),
            nn.GELU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            batch_norm(cout, bn_momentum, train_bn_scale),
            nn.GELU(),
        )
        if identity:
            identity_init(self[0])
            identity_init(self[4])


class FastNet(nn.Module):
    def __init__(self, num_classes: int, in_chans: int = 3, widths: tuple[int, ...] = (64, 256, 256),
                 stem: str = "whiten", block_size: int = 4, stem_channels: int = 24, logit_scale: float = 1 / 9,
                 bn_momentum: float = 0.4, train_bn_scale: bool = True, identity_init: bool = False,
                 channels_last: bool = True):
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"model.options.stem must be one of {', '.join(STEMS)}, got {stem!r}")
        self.stem_kind = stem
        if stem == "block":
            self.whiten = WhiteningConv(in_chans, block_size, block_size)
            d = self.whiten.out_channels
            self.stem = nn.Sequential(self.whiten, nn.GELU(), nn.Conv2d(d, block_size ** 2 * stem_channels, 1),
                                      nn.PixelShuffle(block_size), nn.GELU())
            c = stem_channels
        elif stem == "whiten":
            self.whiten = WhiteningConv(in_chans, 2, 1)
            self.stem = nn.Sequential(self.whiten, nn.GELU())
            c = self.whiten.out_channels
        else:
            self.whiten = None
            self.stem = nn.Sequential(nn.Conv2d(in_chans, stem_channels, 2), nn.GELU())
            c = stem_channels
        groups = []
        for w in widths:
            groups.append(ConvGroup(c, w, bn_momentum, train_bn_scale, identity_init))
            c = w
        self.groups = nn.Sequential(*groups)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(c, num_classes, bias=False)
        self.logit_scale = logit_scale
        # NHWC convolutions measured 1.3x faster per training step on 2 CPU cores (bench/fast_training.py)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    @property
    def fits_to_data(self) -> bool:
        return self.whiten is not None

    def fit(self, inputs: torch.Tensor) -> None:
        """Fit the whitening stem on normalised training inputs [N, C, H, W] (a few thousand suffice)."""
        if self.whiten is not None:
            self.whiten.fit(inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.groups(self.stem(x.contiguous(memory_format=self.memory_format)))
        return self.head(self.pool(x).flatten(1)) * self.logit_scale

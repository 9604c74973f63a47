"""Learned attacks (attacks.md §B): a network f: encrypted -> plain, trained only on the attacker's OWN
images with its OWN random keys, then applied to the victim's ciphertexts.

- `itn` (Ito, Kinoshita, Kiya): paired training, L1 loss; every batch is split into groups and each
  group is encrypted under a fresh random key (per-image keys for skk), so the network cannot learn
  one key and has to learn the scheme.
- `gan` (Kiya-lab GAN-Attack; SIA-GAN of Madono et al. 2021): unpaired. The generator sees the
  attacker's encrypted images; a spectral-normalised discriminator sees natural images from a
  DISJOINT half of the attacker's set; hinge loss. No pair is ever used: the generator's locality
  (its scheme-shaped front end) is what ties its output to its input.
Generator: a front end shaped like the scheme (an M×M stride-M convolution and a pixel shuffle for
block schemes, 1×1 convolutions for pixel-wise ones), then a small U-Net. Output is sigmoid in
[0, 1]; targets are plain/255 in training and outputs are rounded ·255 in evaluation: one range.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .. import ciphers
from ..checks import check_int
from .base import Access, Attack, Outcome, cipher_view, register

PIXEL_SCHEMES = ("plain", "skk")


class FrontEnd(nn.Module):
    """Undo-the-scheme layer: block-wise (M×M stride-M conv + pixel shuffle) or pixel-wise (1×1)."""

    def __init__(self, block: int, width: int):
        super().__init__()
        if block > 1:
            self.net = nn.Sequential(
                nn.Conv2d(3, width * block * block, block, stride=block), nn.GELU(),
                nn.Conv2d(width * block * block, width * block * block, 1), nn.GELU(), nn.PixelShuffle(block))
        else:
            self.net = nn.Sequential(nn.Conv2d(3, 4 * width, 1), nn.GELU(), nn.Conv2d(4 * width, width, 1), nn.GELU())

    def forward(self, x):
        return self.net(x)


def _conv(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(8, cout), nn.GELU())


class UNet(nn.Module):
    """Two-level U-Net (full, 1/2, 1/4 resolution) ending in a sigmoid RGB image."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        self.e1, self.e2, self.e3 = _conv(w, w), _conv(w, 2 * w, 2), _conv(2 * w, 4 * w, 2)
        self.d2 = _conv(4 * w + 2 * w, 2 * w)
        self.d1 = _conv(2 * w + w, w)
        self.out = nn.Conv2d(w, 3, 1)

    def forward(self, x):
        a = self.e1(x)
        b = self.e2(a)
        c = self.e3(b)
        up = F.interpolate(c, size=b.shape[-2:], mode="nearest")
        b = self.d2(torch.cat([up, b], 1))
        up = F.interpolate(b, size=a.shape[-2:], mode="nearest")
        return torch.sigmoid(self.out(self.d1(torch.cat([up, a], 1))))


class Generator(nn.Module):
    def __init__(self, block: int, width: int):
        super().__init__()
        self.front, self.body = FrontEnd(block, width), UNet(width)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """uint8 ciphertext view [B, 3, H, W] -> float image in [0, 1]."""
        return self.body(self.front(y.float() / 127.5 - 1))


class Discriminator(nn.Module):
    """Spectral-normalised convolutional critic (the SIA-GAN choice) on [0, 1] images."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        layers, cin = [], 3
        for cout in (w, 2 * w, 4 * w):
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            cin = cout
        self.features = nn.Sequential(*layers, spectral_norm(nn.Conv2d(cin, cin, 3, padding=1)), nn.LeakyReLU(0.2))
        self.head = spectral_norm(nn.Linear(cin, 1))

    def forward(self, x):
        return self.head(self.features(x * 2 - 1).mean((-2, -1)))[:, 0]


class LearnedAttack(Attack, nn.Module):
    learned = True

    @dataclass(frozen=True)
    class Params:
        epochs: int = 10
        batch_size: int = 64
        lr: float = 2e-3
        width: int = 32
        keys_per_batch: int = 8  # fresh random keys per batch (skk: a fresh key per image anyway)

        def __post_init__(self):
            for name in ("epochs", "batch_size", "width", "keys_per_batch"):
                check_int("learned attack", name, getattr(self, name))

    def __init__(self, **params):
        nn.Module.__init__(self)
        Attack.__init__(self, **params)

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(ciphers.names())

    def prepare(self, access: Access) -> None:
        super().prepare(access)
        block = 1 if access.scheme in PIXEL_SCHEMES else int(access.params.get("block_size", 1))
        self.generator = Generator(block, self.params.width)
        self.build()

    def build(self) -> None:
        """Further networks (the GAN's discriminator)."""

    def own_ciphertexts(self, x: torch.Tensor) -> torch.Tensor:
        """Encrypt the attacker's own images, `keys_per_batch` fresh random keys per batch."""
        if self.access.scheme == "skk":
            own = self.access.own_cipher(key_mode="per_image", per_image_keys="random")
            return cipher_view(own.encrypt(x))
        groups = x.chunk(min(self.params.keys_per_batch, len(x)))
        return torch.cat([cipher_view(self._encrypt_own(self.access.own_cipher(), g)) for g in groups])

    @staticmethod
    def _encrypt_own(cipher, x: torch.Tensor) -> torch.Tensor:
        # scramblemix derives a view from an image id: the attacker names its own images
        return cipher.encrypt(x, ids=[f"own/{i}" for i in range(len(x))] if cipher.needs_ids else None)

    def reconstruct(self, y: torch.Tensor, hint=None) -> Outcome:
        out = self.generator(cipher_view(y))
        return Outcome((out * 255).round().clamp(0, 255).to(torch.uint8))


@register("itn")
class ITN(LearnedAttack):
    threat = "COA"
    description = "inverse transformation network trained on the attacker's own images and random keys"

    def configure_optimizers(self):
        return torch.optim.Adam(self.generator.parameters(), lr=self.params.lr)

    def train_step(self, task, x: torch.Tensor) -> dict:
        opt = task.optimizers()
        loss = F.l1_loss(self.generator(self.own_ciphertexts(x)), x.float() / 255)
        opt.zero_grad()
        task.manual_backward(loss)
        opt.step()
        return {"l1": loss.detach()}


@register("gan")
class GAN(LearnedAttack):
    threat = "COA"
    description = "unpaired GAN attack (hinge loss, spectral norm): the attacker's natural images only"

    def build(self) -> None:
        self.discriminator = Discriminator(self.params.width)

    def configure_optimizers(self):
        betas = (0.5, 0.999)
        return [torch.optim.Adam(self.generator.parameters(), lr=self.params.lr, betas=betas),
                torch.optim.Adam(self.discriminator.parameters(), lr=self.params.lr, betas=betas)]

    def train_step(self, task, x: torch.Tensor) -> dict:
        opt_g, opt_d = task.optimizers()
        half = len(x) // 2  # unpaired: one half is encrypted, the other half is the natural reference
        y, real = self.own_ciphertexts(x[:half]), x[half:].float() / 255
        fake = self.generator(y)
        # Lightning's GAN pattern: each step only computes gradients for its own optimiser's parameters
        task.toggle_optimizer(opt_d)
        d_loss = F.relu(1 - self.discriminator(real)).mean() + F.relu(1 + self.discriminator(fake.detach())).mean()
        opt_d.zero_grad()
        task.manual_backward(d_loss)
        opt_d.step()
        task.untoggle_optimizer(opt_d)
        task.toggle_optimizer(opt_g)
        g_loss = -self.discriminator(fake).mean()
        opt_g.zero_grad()
        task.manual_backward(g_loss)
        opt_g.step()
        task.untoggle_optimizer(opt_g)
        return {"d_hinge": d_loss.detach(), "g_hinge": g_loss.detach()}

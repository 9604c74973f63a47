"""Adapters: block-wise (or pixel-wise) adaptation layers between encrypted images and a backbone.

- `none`: the backbone sees the encrypted image.
- `tanaka`: Tanaka's block-wise adaptation network (anchors.md §1): BN -> M×M conv stride M to 3M²
  channels -> ReLU -> BN -> 1×1 conv (3M²) -> ReLU -> BN -> 1×1 conv to M²·C' -> pixel shuffle by M,
  giving a C'-channel full-resolution map (C' = 32 in the original). M must be the scheme's block size.
- `pixel`: stacked 1×1 convolutions (BN, ReLU between), the per-pixel counterpart for skk.
"""

from __future__ import annotations

from torch import nn

from ..ciphers import Cipher
from ..errors import InputError
from ..registry import Registry

ADAPTERS: Registry = Registry("adapter")


class Adapter(nn.Module):
    applies_to: tuple[str, ...] = ()  # scheme names; empty = all
    out_channels: int

    @classmethod
    def check(cls, cipher: Cipher, **options) -> None:
        if cls.applies_to and cipher.name not in cls.applies_to:
            raise InputError(
                f"adapter {cls.name!r} does not apply to scheme {cipher.name!r}; it applies to: {', '.join(cls.applies_to)}"
            )


@ADAPTERS.register("none")
class NoAdapter(Adapter):
    def __init__(self, in_chans: int, cipher: Cipher):
        super().__init__()
        self.out_channels = in_chans

    def forward(self, x):
        return x


@ADAPTERS.register("tanaka")
class TanakaAdapter(Adapter):
    applies_to = ("plain", "tanaka", "ele", "etc", "vit_block")

    def __init__(self, in_chans: int, cipher: Cipher, block_size: int | None = None, channels: int = 32):
        super().__init__()
        m = self.block(cipher, block_size)
        d = in_chans * m * m
        self.out_channels = channels
        self.net = nn.Sequential(
            nn.BatchNorm2d(in_chans),
            nn.Conv2d(in_chans, d, m, stride=m),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(d),
            nn.Conv2d(d, d, 1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(d),
            nn.Conv2d(d, m * m * channels, 1),
            nn.PixelShuffle(m),
        )

    @staticmethod
    def block(cipher: Cipher, block_size: int | None) -> int:
        if cipher.name == "plain":
            return block_size or 4
        if block_size not in (None, cipher.block_size):
            raise InputError(
                f"adapter tanaka: block_size {block_size} differs from the scheme's block size {cipher.block_size}; "
                "the adaptation network must see whole encrypted blocks"
            )
        return cipher.block_size

    @classmethod
    def check(cls, cipher: Cipher, block_size: int | None = None, **options) -> None:
        super().check(cipher)
        cls.block(cipher, block_size)

    def forward(self, x):
        return self.net(x)


@ADAPTERS.register("pixel")
class PixelAdapter(Adapter):
    applies_to = ("plain", "skk", "scramblemix")  # pixel-wise schemes (ScrambleMix views blend pixel encryptions)

    def __init__(self, in_chans: int, cipher: Cipher, channels: int = 64, depth: int = 2):
        super().__init__()
        layers, c = [], in_chans
        for _ in range(depth):
            layers += [nn.Conv2d(c, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            c = channels
        self.net = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x):
        return self.net(x)


def create_adapter(name: str, in_chans: int, cipher: Cipher, **options) -> Adapter:
    cls = ADAPTERS.get(name)
    cls.check(cipher, **options)
    return cls(in_chans, cipher, **options)

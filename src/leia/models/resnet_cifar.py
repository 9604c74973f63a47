"""CIFAR-style ResNets: a 3×3 stride-1 stem and no max-pool, so 32×32 inputs keep their resolution.

- ResNet-18 (the CIFAR variant of He et al. 2016 used throughout this literature): BasicBlocks
  [2, 2, 2, 2] with 64-128-256-512 channels.
- ResNet-20 (He et al. 2016, §4.2): 3 stages of 3 BasicBlocks with 16-32-64 channels; projection
  (1×1 convolution) shortcuts where the shape changes ("option B").
"""

from __future__ import annotations

from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, widths: list[int], blocks: list[int], num_classes: int, in_chans: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        layers, cin = [], widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(BasicBlock(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


def resnet18_cifar(num_classes: int, in_chans: int = 3) -> CifarResNet:
    return CifarResNet([64, 128, 256, 512], [2, 2, 2, 2], num_classes, in_chans)


def resnet20(num_classes: int, in_chans: int = 3) -> CifarResNet:
    return CifarResNet([16, 32, 64], [3, 3, 3], num_classes, in_chans)

"""Networks, created by name.

``lenet`` and the CIFAR ResNets follow the reference implementation layer for layer
(including its ResNet stem: a 3x3 convolution with *no* padding and no max-pool, followed
by adaptive average pooling). ``mlp`` is a small network for flat feature tables.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .errors import InputError

MODELS = ("lenet", "resnet18", "resnet34", "mlp")


class LeNet(nn.Module):
    """LeNet-5 as in the reference (28x28 input; other sizes get a matching first linear layer)."""

    def __init__(self, *, in_channels: int = 1, image_size: int = 28, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5, stride=1, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        side = (image_size // 2 - 4) // 2
        if side < 1:
            raise InputError(f"lenet needs images of at least 12x12 pixels, got {image_size}x{image_size}; use --model mlp")
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The reference applies ReLU, then max-pooling. Pooling first gives bit-identical
        # outputs and gradients (ReLU is monotone, and both orders send the gradient to the
        # first maximum of each window, or nowhere when it is not positive; tests/test_models.py
        # checks this) while ReLU and its backward touch a quarter of the elements: measured
        # 5 % faster per LeNet training step on a 2-core CPU.
        out = F.relu(F.max_pool2d(self.conv1(x), 2))
        out = F.relu(F.max_pool2d(self.conv2(out), 2))
        out = out.flatten(1)
        out = F.relu(self.fc1(out))
        out = F.relu(self.fc2(out))
        return self.fc3(out)


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet with the reference's stem (3x3, stride 1, padding 0, no max-pool)."""

    def __init__(self, num_blocks: tuple[int, ...], *, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, num_blocks[0], 1)
        self.layer2 = self._make_layer(128, num_blocks[1], 2)
        self.layer3 = self._make_layer(256, num_blocks[2], 2)
        self.layer4 = self._make_layer(512, num_blocks[3], 2)
        self.linear = nn.Linear(512, num_classes)

    def _make_layer(self, planes: int, n: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


class MLP(nn.Module):
    """Two hidden layers with ReLU; flattens whatever it is given."""

    def __init__(self, *, in_features: int, num_classes: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def create_model(name: str, *, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build a freshly initialised network.

    Args:
        name: one of :data:`MODELS`.
        input_shape: shape of one example as the network sees it: (C, H, W) for images,
            (D,) for feature vectors.
        num_classes: number of output logits.
    """
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if name == "mlp":
        in_features = 1
        for s in input_shape:
            in_features *= s
        return MLP(in_features=in_features, num_classes=num_classes)
    if len(input_shape) != 3:
        raise InputError(f"model {name!r} needs images, but the data are flat feature vectors; use --model mlp")
    channels, height, width = input_shape
    if name == "lenet":
        return LeNet(in_channels=channels, image_size=min(height, width), num_classes=num_classes)
    blocks = (2, 2, 2, 2) if name == "resnet18" else (3, 4, 6, 3)
    return ResNet(blocks, in_channels=channels, num_classes=num_classes)

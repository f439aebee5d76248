"""Networks, created by name.

``lenet`` and the CIFAR ResNets follow the reference implementation layer for layer
(including its ResNet stem: a 3x3 convolution with *no* padding and no max-pool, followed
by adaptive average pooling). ``mlp`` is a small network for flat feature tables.

``resnet18`` and ``resnet34`` are the CIFAR ResNets for images smaller than
:data:`IMAGENET_MIN_SIDE` pixels (the smaller of height and width) and torchvision's
ImageNet ResNets from that size up; ``resnet50`` is always torchvision's ImageNet ResNet-50
(v1.5: a Bottleneck's stride sits in its 3x3 convolution). The ImageNet ResNets use
torchvision's parameter and buffer names, shapes and initialisation, so that torchvision's
pretrained state dicts load into them (:mod:`memomentum.training.pretrained`); torchvision itself is
not needed. Their classifier ``fc`` has ``num_classes`` outputs and their first convolution
as many input channels as the images.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..base.errors import InputError
from .names import MODELS

# From this image side (min(H, W), in pixels) up, resnet18/34 are the ImageNet ResNets:
# their stem divides the side by 4 before the first block and the network by 32 in all, which
# leaves a 4x4 map at 128 px; the CIFAR stem keeps full resolution, which on large images
# costs 16 times the compute of the ImageNet stem for the same blocks.
IMAGENET_MIN_SIDE = 128

# Blocks per stage of torchvision's ImageNet ResNets.
IMAGENET_BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3)}


class LeNet(nn.Module):
    """LeNet-5 as in the reference (28x28 input; other sizes get a matching first linear layer)."""

    def __init__(self, *, in_channels: int = 1, image_size: int = 28, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5, stride=1, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        side = (image_size // 2 - 4) // 2
        if side < 1:
            raise InputError(
                f"lenet needs images of at least 12x12 pixels, got {image_size}x{image_size}; use --model mlp"
            )
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The reference applies ReLU, then max-pooling. Pooling first gives bit-identical
        # outputs and gradients (ReLU is monotone, and both orders send the gradient to the
        # first maximum of each window, or nowhere when it is not positive; tests/test_models.py
        # checks this) while ReLU and its backward then touch a quarter of the elements.
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
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# --------------------------------------------------------------------- ImageNet ResNets
# torchvision's ResNets (torchvision/models/resnet.py), rewritten with torch.nn only.
# Attribute names and the order in which submodules are assigned are torchvision's, because
# they make the state dict's keys and their order. nn.ReLU and the pooling layers hold
# nothing but are modules as in torchvision, so that the two print and name modules alike.


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class ImageNetBasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: two 3x3 convolutions, the first one strided."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's ``Bottleneck`` (ResNet v1.5): 1x1, strided 3x3, 1x1 expanding by 4."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        # v1.5: the stride is here rather than in conv1 (v1), as in torchvision and in the
        # pretrained weights, which were trained this way.
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ImageNetResNet(nn.Module):
    """torchvision's ``ResNet``: 7x7 stride-2 stem, max-pool, four stages, average pool, ``fc``.

    Initialised as torchvision does with ``zero_init_residual=False``: convolutions
    Kaiming-normal (fan out, ReLU gain), BatchNorm weight 1 and bias 0, ``fc`` PyTorch's
    default for ``nn.Linear``.
    """

    def __init__(
        self,
        block: type[ImageNetBasicBlock | Bottleneck],
        num_blocks: tuple[int, ...],
        *,
        in_channels: int = 3,
        num_classes: int = 1000,
    ):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], 1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], 2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], 2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes: int, n: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.in_planes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        layers = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes * block.expansion
        layers += [block(self.in_planes, planes) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(self.avgpool(out).flatten(1))


def imagenet_resnet(name: str, *, in_channels: int = 3, num_classes: int = 1000) -> ImageNetResNet:
    """torchvision's ``resnet18``, ``resnet34`` or ``resnet50``, freshly initialised.

    With the defaults its state dict has exactly the keys and shapes of torchvision's.
    """
    if name not in IMAGENET_BLOCKS:
        raise InputError(f"no ImageNet ResNet called {name!r}; choose one of {', '.join(IMAGENET_BLOCKS)}")
    block = Bottleneck if name == "resnet50" else ImageNetBasicBlock
    return ImageNetResNet(block, IMAGENET_BLOCKS[name], in_channels=in_channels, num_classes=num_classes)


def create_model(name: str, *, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build a freshly initialised network.

    Args:
        name: one of :data:`MODELS`. ``resnet18`` and ``resnet34`` are the CIFAR ResNets
            for images smaller than :data:`IMAGENET_MIN_SIDE` pixels and torchvision's
            ImageNet ResNets from that size up; ``resnet50`` is always the ImageNet one.
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
    if name == "resnet50" or min(height, width) >= IMAGENET_MIN_SIDE:
        return imagenet_resnet(name, in_channels=channels, num_classes=num_classes)
    blocks = (2, 2, 2, 2) if name == "resnet18" else (3, 4, 6, 3)
    return ResNet(blocks, in_channels=channels, num_classes=num_classes)

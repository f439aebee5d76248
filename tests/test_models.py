"""Networks: shapes, LeNet's pooling order being exact, and which ResNet a name and size give."""

import pytest
import torch
from torch.nn import functional as F

from memomentum.base.errors import InputError
from memomentum.training.models import ImageNetResNet, LeNet, ResNet, create_model, imagenet_resnet


def _reference_lenet_forward(m: LeNet, x: torch.Tensor) -> torch.Tensor:
    """The reference's layer order: ReLU before each max-pool."""
    out = F.max_pool2d(F.relu(m.conv1(x)), 2)
    out = F.max_pool2d(F.relu(m.conv2(out)), 2).flatten(1)
    return m.fc3(F.relu(m.fc2(F.relu(m.fc1(out)))))


@pytest.mark.parametrize("channels_last", [True, False])
def test_lenet_pool_then_relu_is_bit_identical_to_the_reference_order(channels_last):
    torch.manual_seed(0)
    m = create_model("lenet", input_shape=(1, 28, 28), num_classes=10)
    # Integer-valued inputs and a flat background make many exact ties inside pooling
    # windows, among positive and among negative values: the case where the order matters.
    x = torch.randint(-2, 3, (64, 1, 28, 28)).float()
    x[:, :, :8] = 0.5
    if channels_last:
        m, x = m.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,))
    grads = []
    for forward in (m.forward, lambda t: _reference_lenet_forward(m, t)):
        m.zero_grad(set_to_none=True)
        logits = forward(x)
        F.cross_entropy(logits, y).backward()
        grads.append((logits.detach(), [p.grad.clone() for p in m.parameters()]))
    (ours, our_grads), (ref, ref_grads) = grads
    assert torch.equal(ours, ref)
    assert all(torch.equal(a, b) for a, b in zip(our_grads, ref_grads))
    assert any(g.abs().sum() > 0 for g in our_grads)


@pytest.mark.parametrize(
    "name,shape", [("lenet", (1, 28, 28)), ("lenet", (3, 32, 32)), ("resnet18", (3, 32, 32)), ("mlp", (64,))]
)
def test_models_give_one_logit_per_class(name, shape):
    m = create_model(name, input_shape=shape, num_classes=7).eval()
    with torch.inference_mode():
        assert m(torch.randn(2, *shape)).shape == (2, 7)


@pytest.mark.parametrize(
    "name,shape,imagenet",
    [
        ("resnet18", (3, 32, 32), False),
        ("resnet18", (3, 127, 400), False),
        ("resnet18", (3, 128, 128), True),
        ("resnet34", (3, 64, 64), False),
        ("resnet34", (1, 224, 224), True),
        ("resnet50", (3, 32, 32), True),
        ("resnet50", (1, 28, 28), True),
    ],
)
def test_resnets_are_imagenet_style_from_128_pixels_and_resnet50_always(name, shape, imagenet):
    m = create_model(name, input_shape=shape, num_classes=7)
    assert isinstance(m, ImageNetResNet) == imagenet
    if imagenet:
        assert m.conv1.weight.shape == (64, shape[0], 7, 7) and m.fc.out_features == 7
    else:  # the CIFAR ResNet, unchanged
        assert isinstance(m, ResNet) and m.conv1.weight.shape == (64, shape[0], 3, 3) and m.linear.out_features == 7


def test_imagenet_resnet_strides_and_init_are_torchvisions():
    torch.manual_seed(0)
    m = create_model("resnet50", input_shape=(3, 224, 224), num_classes=1000)
    # v1.5: a stage's first Bottleneck strides in its 3x3 convolution, not its first 1x1.
    assert m.layer2[0].conv1.stride == (1, 1) and m.layer2[0].conv2.stride == (2, 2)
    assert m.layer2[0].downsample[0].stride == (2, 2) and m.layer1[0].downsample[0].stride == (1, 1)
    assert (m.conv1.stride, m.conv1.padding, m.maxpool.stride) == ((2, 2), (3, 3), 2)
    # Kaiming normal, fan out, ReLU gain: std sqrt(2 / (out_channels * kh * kw)).
    for conv in (m.conv1, m.layer3[0].conv2, m.layer4[0].conv3):
        fan_out = conv.weight.shape[0] * conv.weight.shape[2] * conv.weight.shape[3]
        assert abs(conv.weight.std().item() / (2 / fan_out) ** 0.5 - 1) < 0.05
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert len(bns) == 53 and all(bool((b.weight == 1).all() and (b.bias == 0).all()) for b in bns)
    # zero_init_residual=False: the last BatchNorm of each block starts at 1 too (checked above);
    # fc keeps nn.Linear's default, uniform within 1/sqrt(fan_in).
    assert m.fc.weight.abs().max() <= 2048**-0.5 and m.fc.weight.std() > 0.5 * 2048**-0.5 / 3**0.5


def test_imagenet_resnet18_gives_one_logit_per_class():
    m = create_model("resnet18", input_shape=(3, 128, 144), num_classes=5).eval()
    with torch.inference_mode():
        assert m(torch.randn(2, 3, 128, 144)).shape == (2, 5)


def test_unknown_imagenet_resnet_is_an_input_error():
    with pytest.raises(InputError, match="resnet18, resnet34, resnet50"):
        imagenet_resnet("resnet101")

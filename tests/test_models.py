"""Networks: shapes, and LeNet's pooling order being exact."""
import pytest
import torch
from torch.nn import functional as F

from memomentum.models import LeNet, create_model


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


@pytest.mark.parametrize("name,shape", [("lenet", (1, 28, 28)), ("lenet", (3, 32, 32)), ("resnet18", (3, 32, 32)),
                                        ("mlp", (64,))])
def test_models_give_one_logit_per_class(name, shape):
    m = create_model(name, input_shape=shape, num_classes=7).eval()
    with torch.inference_mode():
        assert m(torch.randn(2, *shape)).shape == (2, 7)

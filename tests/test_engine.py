import copy

import numpy as np
import pytest
import torch

from memomentum.training.engine import Engine, balanced_accuracy
from memomentum.training.models import create_model
from memomentum.training.sources import crop_flip, to_device_data


def naive_crop_flip(x, pad_value, dy, dx, flip, padding=4):
    """Per-example reference: pad, crop at (dy, dx), then flip (as torchvision does)."""
    out = []
    for i in range(x.shape[0]):
        c, h, w = x[i].shape
        p = pad_value.view(c, 1, 1).expand(c, h + 2 * padding, w + 2 * padding).clone()
        p[:, padding : padding + h, padding : padding + w] = x[i]
        crop = p[:, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out.append(crop.flip(2) if flip[i] else crop)
    return torch.stack(out)


def test_crop_flip_matches_per_example_crop_then_flip():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 3, 8, 8, generator=g)
    pad = torch.tensor([-1.0, -2.0, -3.0])
    state = g.get_state()
    got = crop_flip(x, pad, g)
    g.set_state(state)
    dy = torch.randint(0, 9, (16, 1), generator=g).flatten()
    dx = torch.randint(0, 9, (16, 1), generator=g).flatten()
    flip = (torch.rand(16, 1, generator=g) < 0.5).flatten()
    assert flip.any() and (~flip).any()
    assert torch.equal(got, naive_crop_flip(x, pad, dy, dx, flip))


def test_images_are_normalised_with_zero_pixel_as_pad_value():
    x = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    x[0, 1, 2] = [255, 0, 51]
    d = to_device_data(x, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.2), device=torch.device("cpu"), channels_last=True)
    assert d.x.shape == (2, 3, 4, 4)
    assert torch.allclose(d.x[0, :, 1, 2], torch.tensor([1.0, -2.0, (0.2 - 0.5) / 0.2]))
    assert torch.allclose(d.pad_value, d.x[1, :, 0, 0])


def test_balanced_accuracy_averages_per_class_and_skips_absent_classes():
    labels = torch.tensor([0, 0, 0, 0, 1, 2])
    pred = torch.tensor([0, 0, 0, 1, 1, 0])
    # class 0: 3/4, class 1: 1/1, class 2: 0/1, class 3 absent
    assert balanced_accuracy(pred, labels, 4) == round(100 * (0.75 + 1 + 0) / 3, 2)


@pytest.mark.parametrize("augment", ["none", "crop_flip"])
def test_train_steps_can_pause_and_continue_exactly(augment):
    torch.manual_seed(0)
    x = (np.random.RandomState(0).rand(70, 8, 8, 3) * 255).astype(np.uint8)
    y = torch.randint(0, 3, (70,))
    eng = Engine(device=torch.device("cpu"), augment=augment, batch_size=16, predict_chunk=32)

    def fresh():
        torch.manual_seed(1)
        m = eng.prepare(create_model("lenet", input_shape=(3, 16, 16), num_classes=3))
        return m, eng.make_optimizer(m, lr=0.1, momentum=0.9, weight_decay=1e-4)

    d = to_device_data(
        np.repeat(np.repeat(x, 2, 1), 2, 2), mean=(0.5,) * 3, std=(0.25,) * 3, device=eng.device, channels_last=True
    )
    g = torch.Generator().manual_seed(5)
    m1, o1 = fresh()
    order = eng.epoch_order(torch.arange(70), g)
    s1, pos = eng.train_steps(m1, m1, o1, d, y, order, start=0, loss_sum=torch.zeros(()), generator=g)
    assert pos == 70

    g2 = torch.Generator().manual_seed(5)
    m2, o2 = fresh()
    order2 = eng.epoch_order(torch.arange(70), g2)
    calls = iter([False, True])
    s2, pos2 = eng.train_steps(
        m2, m2, o2, d, y, order2, start=0, loss_sum=torch.zeros(()), generator=g2, should_pause=lambda: next(calls)
    )
    assert pos2 == 32
    s2, pos2 = eng.train_steps(m2, m2, o2, d, y, order2, start=pos2, loss_sum=s2, generator=g2)
    assert pos2 == 70
    assert torch.equal(s1, s2)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)


def test_predict_chunks_agree_with_one_big_pass():
    torch.manual_seed(0)
    x = np.random.RandomState(1).randn(50, 5).astype(np.float32)
    d = to_device_data(x, mean=np.zeros(5), std=np.ones(5), device=torch.device("cpu"), channels_last=True)
    m = create_model("mlp", input_shape=(5,), num_classes=4)
    small = Engine(device=torch.device("cpu"), augment="none", batch_size=8, predict_chunk=7)
    big = Engine(device=torch.device("cpu"), augment="none", batch_size=8, predict_chunk=1000)
    p1, c1 = small.predict(m, m, d)
    p2, c2 = big.predict(m, m, d)
    assert torch.equal(p1, p2)
    assert torch.allclose(c1, c2)
    with torch.no_grad():
        probs = m(d.x).softmax(1)
    assert torch.equal(p2, probs.argmax(1))
    assert torch.allclose(c2, probs.max(1).values)


# -- performance options that must not change results ---------------------------------------


def _lenet_and_images(n=300, seed=0, channels_last=True, shape=(28, 28, 1), model="lenet"):
    x = (np.random.RandomState(seed).rand(n, *shape) * 255).astype(np.uint8)
    d = to_device_data(
        x, mean=(0.3,) * shape[2], std=(0.3,) * shape[2], device=torch.device("cpu"), channels_last=channels_last
    )
    torch.manual_seed(seed)
    m = create_model(model, input_shape=(shape[2], shape[0], shape[1]), num_classes=10)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    return m, d


def test_engine_picks_the_device_default_prediction_chunk_unless_given():
    from memomentum.training.engine import DEFAULT_PREDICT_CHUNK

    cpu = torch.device("cpu")
    assert Engine(device=cpu, augment="none", batch_size=8).predict_chunk == DEFAULT_PREDICT_CHUNK["cpu"]
    assert (
        Engine(device=cpu, augment="none", batch_size=8, predict_chunk=None).predict_chunk
        == DEFAULT_PREDICT_CHUNK["cpu"]
    )
    assert Engine(device=cpu, augment="none", batch_size=8, predict_chunk=77).predict_chunk == 77


@pytest.mark.parametrize("chunks", [(1024, 4096), (64, 300), (128, 1024)])
def test_prediction_chunk_size_leaves_lenet_predictions_unchanged(chunks):
    # 300 examples: chunks of 64 and 128 leave trailing chunks of 44 examples. On the CPU
    # the predictions (argmax) are the same; confidences agree to float rounding (they were
    # bit-identical on the development machine, but the BLAS may block small chunks
    # differently elsewhere).
    m, d = _lenet_and_images()
    out = []
    for chunk in chunks:
        eng = Engine(device=torch.device("cpu"), augment="none", batch_size=32, predict_chunk=chunk)
        out.append(eng.predict(m, m, d))
    (p1, c1), (p2, c2) = out
    assert torch.equal(p1, p2)
    assert torch.allclose(c1, c2, rtol=0, atol=1e-6)


@pytest.mark.parametrize("model,shape", [("lenet", (28, 28, 1)), ("resnet18", (32, 32, 3))])
def test_channels_last_is_close_but_not_claimed_exact(model, shape):
    # channels_last changes oneDNN's summation order: on the development machine LeNet's
    # logits were bit-identical but ResNet-18's differed by ~2e-8. Hence only closeness.
    n = 300 if model == "lenet" else 16
    logits = []
    for cl in (True, False):
        m, d = _lenet_and_images(n=n, channels_last=cl, shape=shape, model=model)
        with torch.inference_mode():
            logits.append(m.eval()(d.x))
    assert torch.equal(logits[0].argmax(1), logits[1].argmax(1))
    assert torch.allclose(logits[0], logits[1], rtol=1e-4, atol=1e-5)


def test_keep_freed_memory_is_idempotent_and_respects_user_malloc_settings(monkeypatch):
    from memomentum.training import malloc as engine_module

    first = engine_module.keep_freed_memory()
    assert engine_module.keep_freed_memory() is first
    assert isinstance(first, bool)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")  # unrelated: does not stop the tuning
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert engine_module._tune_glibc_malloc() is False


_TRAIN_SCRIPT = r"""
import sys, hashlib, numpy as np, torch
import memomentum.training.malloc as E
if sys.argv[1] == "off":
    E._malloc_tuned = False  # as if keep_freed_memory() had been a no-op
from memomentum.training.engine import Engine
from memomentum.training.sources import crop_flip, to_device_data
from memomentum.training.models import create_model
torch.set_num_threads(1)
x = (np.random.RandomState(0).rand(600, 28, 28, 1) * 255).astype(np.uint8)
y = torch.from_numpy(np.random.RandomState(1).randint(0, 10, 600))
eng = Engine(device=torch.device("cpu"), augment="none", batch_size=64, predict_chunk=256)
d = to_device_data(x, mean=(0.3,), std=(0.3,), device=eng.device, channels_last=eng.channels_last)
torch.manual_seed(0)
m = eng.prepare(create_model("lenet", input_shape=(1, 28, 28), num_classes=10))
opt = eng.make_optimizer(m, lr=0.05, momentum=0.9, weight_decay=1e-4)
g = torch.Generator().manual_seed(0)
s, _ = eng.train_steps(m, m, opt, d, y, eng.epoch_order(torch.arange(600), g), start=0,
                       loss_sum=torch.zeros(()), generator=g)
p, c = eng.predict(m, m, d)
h = hashlib.sha256()
for t in [s, p, c, *m.state_dict().values()]:
    h.update(t.detach().contiguous().numpy().tobytes())
print(E._malloc_tuned, h.hexdigest())
"""


def test_malloc_tuning_does_not_change_training_or_predictions():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = {}
    for mode in ("on", "off"):
        r = subprocess.run(
            [sys.executable, "-c", _TRAIN_SCRIPT, mode],
            capture_output=True,
            text=True,
            cwd=root,
            check=True,
            timeout=300,
        )
        out[mode] = r.stdout.split()
    assert out["off"][0] == "False"
    assert out["on"][0] == str(sys.platform.startswith("linux"))  # glibc's mallopt took both settings
    assert out["on"][1] == out["off"][1]


def test_exact_options_leave_the_summary_and_confident_sets_unchanged():
    """Prediction chunk size is meant to be exact: a whole run gives the same rounds,
    confident sets and accuracies with any chunk."""
    from memomentum import RunConfig
    from memomentum.entrypoints.api import run

    def summary(chunk):
        cfg = RunConfig(epochs=4, max_outer_loop=2, max_inner_loop=3, predict_chunk=chunk, progress=False)
        s = dict(run(cfg, write=False).summary)
        for timing in ("wall_time_s", "time_s"):
            s.pop(timing)
        return s

    small, large = summary(64), summary(4096)
    assert small["rounds"] and small == large


# -- the GPU path, run on the CPU -------------------------------------------------------------


def test_gpu_policy_runs_on_the_cpu_with_fixed_shapes():
    """The CUDA defaults (bf16 autocast, channels_last, fused SGD, torch.compile with fixed
    shapes), switched on here on the CPU. A plain compile backend records what is compiled:
    however many examples an epoch or a prediction pass has, the compiled graphs only ever
    see the one training batch shape and the one prediction chunk shape, so a confident set
    that changes size between rounds never triggers a recompilation."""
    torch._dynamo.reset()
    seen = []

    def recording_backend(graph, example_inputs):
        seen.append(tuple(tuple(t.shape) for t in example_inputs if isinstance(t, torch.Tensor) and t.dim() == 4))
        return graph.forward

    cpu = torch.device("cpu")
    eng = Engine(
        device=cpu,
        augment="crop_flip",
        batch_size=16,
        predict_chunk=32,
        compile=True,
        compile_backend=recording_backend,
        precision="bf16",
        fused_optimizer=True,
    )
    assert eng.amp_dtype == torch.bfloat16 and eng.channels_last
    m, d = _lenet_and_images(n=120, shape=(28, 28, 3))
    m = eng.prepare(m)
    forward = eng.forward_fn(m)
    optimizer = eng.make_optimizer(m, lr=0.05, momentum=0.9, weight_decay=1e-4)
    assert optimizer.defaults["fused"]
    conv_dtypes = set()
    m.conv1.register_forward_hook(lambda mod, inp, out: conv_dtypes.add(out.dtype))
    labels = torch.arange(120) % 10
    g = torch.Generator().manual_seed(0)
    for n in (120, 101, 77):  # confident sets of changing size
        order = eng.epoch_order(torch.arange(n), g)
        loss_sum, pos = eng.train_steps(
            m, forward, optimizer, d, labels, order, start=0, loss_sum=torch.zeros(()), generator=g
        )
        assert pos == n - n % 16  # full batches only: the partial one is dropped
        assert torch.isfinite(loss_sum)
        pred, conf = eng.predict(m, forward, d, index=torch.arange(n))
        assert pred.shape == (n,) and conf.dtype == torch.float32
        assert ((conf > 0) & (conf <= 1)).all()
    probs = eng.predict_proba(m, forward, d)
    assert probs.shape == (120, 10) and torch.allclose(probs.sum(1), torch.ones(120))
    assert conv_dtypes == {torch.bfloat16}
    input_shapes = {s[0] for s in seen if s}
    assert input_shapes == {(16, 3, 28, 28), (32, 3, 28, 28)}, seen


def test_run_asks_for_torch_compile_on_cuda_only(monkeypatch):
    from memomentum import RunConfig
    from memomentum.entrypoints import api
    from memomentum.runner import pipeline

    made = []
    real = pipeline.Engine

    def spy(**kwargs):
        made.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(pipeline, "Engine", spy)
    api.run(RunConfig(epochs=1, max_outer_loop=1, max_inner_loop=1, compile=True, progress=False), write=False)
    assert made and made[0]["compile"] is False


# -- the recorded training step (training.graphs), its CPU stand-in -------------------------------


def _train_phase(cuda_graph, class_weights=None):
    """Epochs of changing size (partial last batches), a learning-rate milestone and an
    optimizer reloaded from its state dict (a resume) in the middle: the loss sums, the
    weights and how many recordings were made."""
    eng = Engine(
        device=torch.device("cpu"), augment="crop_flip", batch_size=16, predict_chunk=32, cuda_graph=cuda_graph
    )
    m, d = _lenet_and_images(n=120, shape=(16, 16, 3))
    m = eng.prepare(m)
    optimizer = eng.make_optimizer(m, lr=0.05, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2], gamma=0.1)
    labels = torch.arange(120) % 10
    g = torch.Generator().manual_seed(0)
    sums = []
    for epoch, n in enumerate((120, 101, 77, 64)):
        if epoch == 3:
            optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # new momentum buffers, as after --resume
        order = eng.epoch_order(torch.arange(n), g)
        loss_sum, pos = eng.train_steps(
            m,
            m,
            optimizer,
            d,
            labels,
            order,
            start=0,
            loss_sum=torch.zeros(()),
            generator=g,
            class_weights=class_weights,
        )
        assert pos == n  # no example dropped: the short last batch runs eagerly
        sums.append(loss_sum)
        scheduler.step()
    return sums, [p.detach().clone() for p in m.parameters()], eng.graphed


@pytest.mark.parametrize("weighted", [False, True])
def test_graphed_step_trains_exactly_as_the_eager_step(weighted):
    weights = torch.linspace(0.5, 1.5, 10) if weighted else None
    eager_sums, eager_params, none = _train_phase(False, weights)
    graph_sums, graph_params, graphed = _train_phase(True, weights)
    assert none is None
    assert torch.equal(torch.stack(eager_sums), torch.stack(graph_sums))
    for a, b in zip(eager_params, graph_params):
        assert torch.equal(a, b)
    # recorded in epoch 1 (after 3 warm-up steps), again after the milestone (epoch 3, lr 0.005)
    # and again after the optimizer's state was reloaded (epoch 4); epoch 2 replays epoch 1's
    assert graphed.recordings == 3


def test_graphed_step_replays_after_warming_up_and_keeps_class_weights_current():
    from memomentum.training.graphs import GraphedStep

    calls = []
    eng = Engine(device=torch.device("cpu"), augment="none", batch_size=8, cuda_graph=True)
    m, d = _lenet_and_images(n=40, shape=(16, 16, 3))
    m = eng.prepare(m)
    optimizer = eng.make_optimizer(m, lr=0.05, momentum=0.9, weight_decay=0.0)
    step = GraphedStep(torch.device("cpu"), eng.autocast, warmup_steps=2)
    weights = torch.ones(10)
    step.begin(m, optimizer, weights, (8, 3, 16, 16))
    xb, yb = d.x[:8], torch.arange(8)
    m.register_forward_hook(lambda mod, inp, out: calls.append(inp[0]))
    for _ in range(4):
        step(xb, yb)
    assert step.recordings == 1
    assert calls[0] is xb and calls[1] is xb  # warm-up: the batch itself
    assert calls[2] is calls[3] and calls[2] is not xb and torch.equal(calls[2], xb)  # replays: the fixed buffer
    weights.mul_(2)  # the same tensor with new values, as Clothing1M's next phase might give
    step.begin(m, optimizer, weights, (8, 3, 16, 16))
    assert step.recordings == 1 and torch.equal(step._w, weights)
    assert step.takes(xb) and not step.takes(d.x[:5])


def test_cuda_graph_is_refused_with_compile_or_several_processes():
    from memomentum import RunConfig
    from memomentum.base.errors import InputError
    from memomentum.training.distributed import Distributed

    with pytest.raises(InputError, match="--compile"):
        Engine(device=torch.device("cpu"), augment="none", batch_size=8, compile=True, cuda_graph=True)
    with pytest.raises(InputError, match="several processes"):
        Engine(
            device=torch.device("cpu"),
            augment="none",
            batch_size=8,
            cuda_graph=True,
            dist=Distributed(rank=0, world_size=2, local_rank=0),
        )
    with pytest.raises(InputError, match="leave out --compile"):
        RunConfig(compile=True, cuda_graph=True)


def test_run_records_cuda_graphs_on_cuda_only(monkeypatch):
    from memomentum import RunConfig
    from memomentum.entrypoints import api
    from memomentum.runner import pipeline

    made = []
    real = pipeline.Engine
    monkeypatch.setattr(pipeline, "Engine", lambda **kwargs: made.append(kwargs) or real(**kwargs))
    api.run(RunConfig(epochs=1, max_outer_loop=1, max_inner_loop=1, cuda_graph=True, progress=False), write=False)
    assert made and made[0]["cuda_graph"] is False

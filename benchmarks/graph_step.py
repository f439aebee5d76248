"""The training step eager and recorded as a CUDA graph (``--cuda-graph``), side by side.

For each case the engine trains whole epochs of synthetic data of the real shapes, resident on
the device as a run keeps them (uint8 on a GPU, normalised batch by batch), with the run's
defaults for the device (on CUDA: bf16 autocast, channels-last,
fused SGD), once through the eager step and once through
:class:`memomentum.training.graphs.GraphedStep`, taking turns epoch by epoch (``--repeats``
rounds after one warm-up round of each), and reports images per second and the time per step
(best round). The crop-and-flip augmentation is drawn on the device for every batch, as in a
run; it stays outside the graph.

It also checks the numbers: from the same initial network, order and augmentation, both
steps train ``--check-steps`` steps; it reports the largest parameter difference (relative to
the parameter's scale) and the two loss sums. On the CPU there is no graph (the recorded
step is the eager step called on fixed buffers) and the two are the same bits.

Cases: ``resnet18`` (the CIFAR ResNet-18, 32 x 32 x 3, 45,000 examples an epoch) and
``lenet`` (28 x 28 x 1, 54,000), both at batch 128 (``--n`` changes the epoch size).

    python benchmarks/graph_step.py --device cuda
    python benchmarks/graph_step.py --device cpu --cases lenet --n 512 --repeats 1 --check-steps 6

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import memomentum.training.threads  # noqa: F401  (its wait policy before torch loads OpenMP)

# isort: split
import numpy as np
import torch

from memomentum.training.engine import Engine
from memomentum.training.models import create_model
from memomentum.training.sources import to_device_data

CASES = {"resnet18": dict(shape=(32, 32, 3), n=45_000), "lenet": dict(shape=(28, 28, 1), n=54_000)}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _setup(case: str, n: int, device: torch.device, cuda_graph: bool, batch: int):
    """An engine, a fresh network (seed 0), its optimizer, resident data and labels."""
    shape = CASES[case]["shape"]
    rng = np.random.RandomState(0)
    x = rng.randint(0, 256, size=(n, *shape), dtype=np.uint8)
    engine = Engine(device=device, augment="crop_flip", batch_size=batch, cuda_graph=cuda_graph)
    data = to_device_data(
        x,
        mean=(0.5,) * shape[2],
        std=(0.25,) * shape[2],
        device=device,
        channels_last=True,
        keep_uint8=device.type == "cuda",
    )  # as a run keeps images on a GPU
    labels = torch.as_tensor(rng.randint(0, 10, size=n), device=device)
    torch.manual_seed(0)
    model = engine.prepare(create_model(case, input_shape=(shape[2], shape[0], shape[1]), num_classes=10))
    optimizer = engine.make_optimizer(model, lr=0.01, momentum=0.9, weight_decay=1e-4)
    return engine, model, optimizer, data, labels


def _epoch(setup, generator: torch.Generator, steps: int | None = None) -> tuple[float, torch.Tensor]:
    """Train one epoch (or its first ``steps`` batches); seconds and the loss sum."""
    engine, model, optimizer, data, labels = setup
    order = engine.epoch_order(torch.arange(len(data), device=engine.device), generator)
    if steps is not None:
        order = order[: steps * engine.batch_size]
    _synchronize(engine.device)
    t0 = time.perf_counter()
    loss_sum, _ = engine.train_steps(
        model,
        model,
        optimizer,
        data,
        labels,
        order,
        start=0,
        loss_sum=torch.zeros((), device=engine.device),
        generator=generator,
    )
    _synchronize(engine.device)
    return time.perf_counter() - t0, loss_sum


def check_numbers(case: str, device: torch.device, steps: int, batch: int) -> dict:
    """Both steps from the same start: how far apart the weights and loss sums end."""
    ends = {}
    for graphed in (False, True):
        setup = _setup(case, steps * batch, device, graphed, batch)
        _, loss = _epoch(setup, torch.Generator(device=device).manual_seed(1))
        ends[graphed] = (
            [p.detach().float() for p in setup[1].parameters()],
            float(loss),
            setup[0].graphed.recordings if graphed else 0,
        )
    (eager_params, eager_loss, _), (graph_params, graph_loss, recordings) = ends[False], ends[True]
    worst = max(float((a - b).abs().max() / a.abs().max().clamp_min(1e-12)) for a, b in zip(eager_params, graph_params))
    return {
        "steps": steps,
        "recordings": recordings,
        "eager_loss_sum": round(eager_loss, 6),
        "graph_loss_sum": round(graph_loss, 6),
        "max_relative_parameter_difference": worst,
        "identical": all(torch.equal(a, b) for a, b in zip(eager_params, graph_params)),
    }


def time_case(case: str, n: int, device: torch.device, repeats: int, batch: int) -> dict:
    """Eager and graphed epochs in turn, one warm-up round first."""
    setups = {name: _setup(case, n, device, name == "graph", batch) for name in ("eager", "graph")}
    generators = {name: torch.Generator(device=device).manual_seed(2) for name in setups}
    times = {name: [] for name in setups}
    for round_ in range(repeats + 1):
        for name, setup in setups.items():
            seconds, _ = _epoch(setup, generators[name])
            if round_:
                times[name].append(round(seconds, 4))
    out = {"examples": n, "batch": batch, "measured_s": times}
    for name, ts in times.items():
        best = min(ts)
        out[name] = {
            "epoch_s": round(best, 4),
            "images_per_s": round(n / best, 1),
            "step_ms": round(1000 * best / -(-n // batch), 3),
        }
    out["speedup"] = round(out["eager"]["epoch_s"] / out["graph"]["epoch_s"], 3)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--cases", default="resnet18,lenet", help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--n", type=int, default=None, help="examples an epoch (default: the case's)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--check-steps", type=int, default=30)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    out = {
        "device": args.device,
        "torch": torch.__version__,
        "gpu_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cases": {},
    }
    for case in args.cases.split(","):
        n = args.n or CASES[case]["n"]
        out["cases"][case] = {
            "numbers": check_numbers(case, device, args.check_steps, args.batch),
            **time_case(case, n, device, args.repeats, args.batch),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

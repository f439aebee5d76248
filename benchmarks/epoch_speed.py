"""Time one training epoch and one full prediction pass: memomentum's engine against a
conventional PyTorch pipeline, in the same run and on the same device.

Cases:

* ``lenet``: LeNet on Fashion-MNIST, the first 54,000 training images (the size of the
  training part after a 10% validation split) with the file's labels;
* ``resnet18``: ResNet-18 on CIFAR-10-shaped data (45,000 random 32x32x3 uint8 images, random
  labels). A ResNet-18 epoch on a small CPU takes very long, so on the CPU the default
  measures ``--n`` = 1,024 examples and scales the times to 45,000 (see ``measured_examples``
  and ``scaled_to`` in the output).

The engine side is what a run uses: data normalised once on the device
(:func:`memomentum.training.sources.to_device_data`), batches and augmentation as tensor operations
(:meth:`Engine.epoch_order` / :meth:`Engine.train_steps`), prediction in large chunks
(:meth:`Engine.predict`), models from :func:`memomentum.training.models.create_model`.

The conventional side is written the usual way: a ``torch.utils.data.Dataset`` that builds a
PIL image per item and applies torchvision-style transforms (written out here, so that
torchvision is not needed; CIFAR: RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor,
Normalize; Fashion-MNIST: ToTensor, Normalize), a ``DataLoader`` with ``--workers`` worker
processes, batch 128, shuffling, fp32, ``loss.item()`` after every step, plain SGD, and
prediction through a ``DataLoader`` with batch 256 under ``torch.no_grad``.

The two sides take turns, epoch by epoch: one warm-up of everything, then ``--repeats``
timed rounds of (training epoch, model floor, prediction pass) for (conventional, engine);
the best time of each is reported and every time is listed under ``measured``. Taking turns
keeps a machine whose speed drifts over minutes (shared virtual machines do) from favouring
either side. The conventional side runs in a process of its own, with the C library's
default malloc settings as users have them; the engine runs in this one (it tunes malloc
process-wide, see :func:`memomentum.training.malloc.keep_freed_memory`).

``model_step_floor`` times the model's own training steps, as many as an epoch has, on one
batch that stays in memory (no indexing, no data pipeline, no loss bookkeeping): once for the
conventional side's model (NCHW, plain SGD) and once for the engine's (its layout and
optimizer). No data path can make an epoch faster than its model's floor with the same
kernels, so ``conventional / floor`` is the most that any data-path speed-up can reach, and
``engine / engine floor`` is what the engine's own data path costs on top of the model.

Prints one JSON object.

    python benchmarks/epoch_speed.py --case lenet
    python benchmarks/epoch_speed.py --case resnet18 --n 2048 --repeats 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# memomentum before torch, as a run imports them: its CPU wait policy (memomentum.training.threads) must
# be in the environment when torch loads the OpenMP runtime.
import memomentum  # noqa: F401
from memomentum.training import threads

# isort: split

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

import memomentum.training.malloc as malloc_module
from memomentum.data.benchmarks import read_idx
from memomentum.data.registry import CIFAR10, FASHION_MNIST
from memomentum.training.engine import Engine, choose_device
from memomentum.training.models import create_model
from memomentum.training.sources import to_device_data
from memomentum.training.threads import choose_threads

FASHION_MEAN, FASHION_STD = FASHION_MNIST.stats  # the registry's, as the package normalises them
CIFAR_MEAN, CIFAR_STD = CIFAR10.stats
RESNET_FULL = 45_000
RESNET_CPU_DEFAULT_N = 1_024
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 1e-4


# libgomp's own default wait (what a PyTorch user gets without memomentum's policy).
LIBGOMP_DEFAULT_WAIT = {"GOMP_SPINCOUNT": "300000"}


@contextlib.contextmanager
def spawn_environment(wait: dict):
    """Start processes with the OpenMP wait variables ``wait`` in place of this process's: a
    spawned child starts with the parent's environment, and its torch reads them at import."""
    saved = {k: os.environ.pop(k) for k in threads.WAIT_VARIABLES if k in os.environ}
    os.environ.update(wait)
    try:
        yield
    finally:
        for k in threads.WAIT_VARIABLES:
            os.environ.pop(k, None)
        os.environ.update(saved)


# -- data ------------------------------------------------------------------------------------
def load_fashion(data_dir: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` Fashion-MNIST training images (N, 28, 28, 1) uint8 and their labels."""
    d = Path(data_dir)
    x = read_idx(d / f"{FASHION_MNIST.file('train_images')}.gz", kind="images")[..., None]
    y = read_idx(d / f"{FASHION_MNIST.file('train_labels')}.gz", kind="labels").astype(np.int64)
    if n > len(x):
        raise SystemExit(f"--n {n} is larger than the {len(x)} Fashion-MNIST training images")
    return np.ascontiguousarray(x[:n]), y[:n].copy()


def random_cifar(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, size=n).astype(np.int64)


# -- the conventional pipeline: torchvision-style transforms written by hand ---------------------
class RandomCrop:
    """torchvision.transforms.RandomCrop(size, padding) on a PIL image (zero fill)."""

    def __init__(self, size: int, padding: int):
        self.size, self.padding = size, padding

    def __call__(self, img: Image.Image) -> Image.Image:
        p = self.padding
        padded = Image.new(img.mode, (img.width + 2 * p, img.height + 2 * p), 0)
        padded.paste(img, (p, p))
        i = int(torch.randint(0, padded.height - self.size + 1, size=(1,)).item())
        j = int(torch.randint(0, padded.width - self.size + 1, size=(1,)).item())
        return padded.crop((j, i, j + self.size, i + self.size))


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(1) < self.p:
            return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img


class ToTensor:
    """torchvision.transforms.ToTensor for 8-bit PIL images: C x H x W float in [0, 1]."""

    def __call__(self, img: Image.Image) -> torch.Tensor:
        t = torch.from_numpy(np.array(img, np.uint8, copy=True))
        t = t.view(img.height, img.width, len(img.getbands())).permute(2, 0, 1).contiguous()
        return t.to(dtype=torch.get_default_dtype()).div(255)


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.mean, dtype=t.dtype, device=t.device)
        std = torch.as_tensor(self.std, dtype=t.dtype, device=t.device)
        return t.sub_(mean[:, None, None]).div_(std[:, None, None])


class Compose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class ImageDataset(torch.utils.data.Dataset):
    """uint8 images (N, H, W, C) -> (transformed tensor, label), one PIL image per item."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        img = self.x[i]
        img = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)  # mode L or RGB
        return self.transform(img), int(self.y[i])


def conventional_transforms(augment: bool, mean, std):
    tail = [ToTensor(), Normalize(mean, std)]
    return Compose(([RandomCrop(32, padding=4), RandomHorizontalFlip()] if augment else []) + tail)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Conventional:
    def __init__(self, model_name, x, y, *, augment, mean, std, device, workers, batch_size, predict_batch):
        self.device = device
        torch.manual_seed(0)
        self.model = create_model(model_name, input_shape=(x.shape[3], x.shape[1], x.shape[2]), num_classes=10).to(
            device
        )
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        cuda = device.type == "cuda"
        self.train_loader = torch.utils.data.DataLoader(
            ImageDataset(x, y, conventional_transforms(augment, mean, std)),
            batch_size=batch_size,
            shuffle=True,
            num_workers=workers,
            pin_memory=cuda,
        )
        self.predict_loader = torch.utils.data.DataLoader(
            ImageDataset(x, y, conventional_transforms(False, mean, std)),
            batch_size=predict_batch,
            shuffle=False,
            num_workers=workers,
            pin_memory=cuda,
        )

    def train_epoch(self) -> float:
        self.model.train()
        total = 0.0
        for xb, yb in self.train_loader:
            xb, yb = xb.to(self.device), yb.to(self.device)
            loss = F.cross_entropy(self.model(xb), yb)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.item() * yb.numel()
        return total

    def predict(self):
        self.model.eval()
        preds, confs = [], []
        with torch.no_grad():
            for xb, _ in self.predict_loader:
                p, c = self.model(xb.to(self.device)).softmax(1).max(1)
                preds.append(c.cpu())
                confs.append(p.cpu())
        return torch.cat(preds), torch.cat(confs)


class EngineSide:
    def __init__(self, model_name, x, y, *, augment, mean, std, device, batch_size, predict_chunk, compile):
        self.engine = Engine(
            device=device,
            augment="crop_flip" if augment else "none",
            batch_size=batch_size,
            predict_chunk=predict_chunk,
            compile=compile,
        )
        self.data = to_device_data(x, mean=mean, std=std, device=device, channels_last=self.engine.channels_last)
        self.labels = torch.as_tensor(y, device=device)
        self.index = torch.arange(len(y), device=device)
        torch.manual_seed(0)
        self.model = self.engine.prepare(
            create_model(model_name, input_shape=tuple(self.data.x.shape[1:]), num_classes=10)
        )
        self.forward = self.engine.forward_fn(self.model)
        self.optimizer = self.engine.make_optimizer(self.model, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(0)

    def train_epoch(self) -> float:
        order = self.engine.epoch_order(self.index, self.generator)
        loss_sum, _ = self.engine.train_steps(
            self.model,
            self.forward,
            self.optimizer,
            self.data,
            self.labels,
            order,
            start=0,
            loss_sum=torch.zeros((), device=self.engine.device),
            generator=self.generator,
        )
        return float(loss_sum)  # the one host sync per epoch, as in a run

    def predict(self):
        pred, conf = self.engine.predict(self.model, self.forward, self.data)
        return pred.cpu(), conf.cpu()


class ModelStepFloor:
    """The model's training step repeated on one resident batch: forward, loss, backward and
    optimizer step only (see the module docstring)."""

    def __init__(self, model_name, x, y, *, mean, std, device, batch_size, engine: Engine | None):
        self.steps = -(-len(x) // batch_size)  # as many as an epoch over x has
        channels_last = engine is not None and engine.channels_last
        data = to_device_data(x[:batch_size], mean=mean, std=std, device=device, channels_last=channels_last)
        self.xb, self.yb = data.x, torch.as_tensor(y[:batch_size], device=device)
        torch.manual_seed(0)
        model = create_model(model_name, input_shape=tuple(self.xb.shape[1:]), num_classes=10)
        if engine is None:
            self.model = model.to(device)
            self.forward = self.model
            self.optimizer = torch.optim.SGD(
                self.model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
            )
            self.autocast = contextlib.nullcontext()
        else:
            self.model = engine.prepare(model)
            self.forward = engine.forward_fn(self.model)
            self.optimizer = engine.make_optimizer(self.model, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
            self.autocast = engine.autocast()

    def train_epoch(self) -> None:
        self.model.train()
        for _ in range(self.steps):
            with self.autocast:
                loss = F.cross_entropy(self.forward(self.xb), self.yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()


def timed(fn, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def case_data(case: str, args, device: torch.device) -> dict:
    if case == "lenet":
        n = args.n or 54_000
        x, y = load_fashion(args.fashion_dir, n)
        return dict(
            model="lenet",
            x=x,
            y=y,
            n=n,
            full=n,
            augment=False,
            mean=FASHION_MEAN,
            std=FASHION_STD,
            dataset="fashion-mnist (first n training images, labels from the file)",
        )
    n = args.n or (RESNET_FULL if device.type == "cuda" else RESNET_CPU_DEFAULT_N)
    x, y = random_cifar(n)
    return dict(
        model="resnet18",
        x=x,
        y=y,
        n=n,
        full=RESNET_FULL,
        augment=True,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        dataset="cifar10-shaped random uint8 pixels and labels",
    )


class LocalSide:
    """The engine's pipeline and its model floor, timed in this process."""

    def __init__(self, c: dict, args, device: torch.device):
        self.device = device
        self.pipeline = EngineSide(
            c["model"],
            c["x"],
            c["y"],
            augment=c["augment"],
            mean=c["mean"],
            std=c["std"],
            device=device,
            batch_size=args.batch_size,
            predict_chunk=args.predict_chunk,
            compile=args.compile,
        )
        floor_engine = Engine(device=device, augment="none", batch_size=args.batch_size, compile=args.compile)
        self.floor = ModelStepFloor(
            c["model"],
            c["x"],
            c["y"],
            mean=c["mean"],
            std=c["std"],
            device=device,
            batch_size=args.batch_size,
            engine=floor_engine,
        )

    def time(self, what: str) -> float:
        fn = {"train": self.pipeline.train_epoch, "predict": self.pipeline.predict, "floor": self.floor.train_epoch}[
            what
        ]
        return timed(fn, self.device)


def _conventional_server(conn, c: dict, args, device_name: str, start_method: str) -> None:
    """Child process: build the conventional pipeline and its model floor, then time whatever
    the parent asks for, one epoch at a time."""
    # A spawned process spawns its own children too; the DataLoader's workers should start the
    # platform's usual way (fork on Linux), as in a user's script.
    multiprocessing.set_start_method(start_method, force=True)
    device = torch.device(device_name)
    choose_threads(args.threads).apply()
    pipeline = Conventional(
        c["model"],
        c["x"],
        c["y"],
        augment=c["augment"],
        mean=c["mean"],
        std=c["std"],
        device=device,
        batch_size=args.batch_size,
        workers=args.workers,
        predict_batch=args.predict_batch,
    )
    floor = ModelStepFloor(
        c["model"], c["x"], c["y"], mean=c["mean"], std=c["std"], device=device, batch_size=args.batch_size, engine=None
    )
    fns = {"train": pipeline.train_epoch, "predict": pipeline.predict, "floor": floor.train_epoch}
    conn.send("ready")
    while (what := conn.recv()) != "stop":
        conn.send(timed(fns[what], device))


class RemoteSide:
    """The conventional pipeline and its model floor, timed in a process of their own, so that
    they run with the C library's default malloc settings and libgomp's default waiting, as
    users run them, while the engine (which tunes malloc process-wide and runs under
    memomentum's wait policy) runs here."""

    def __init__(self, c: dict, args, device: torch.device):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        # Not a daemon: the DataLoader in it starts worker processes of its own.
        self.process = ctx.Process(
            target=_conventional_server,
            daemon=False,
            args=(child_conn, c, args, str(device), multiprocessing.get_start_method()),
        )
        with spawn_environment(LIBGOMP_DEFAULT_WAIT):  # a user's PyTorch defaults
            self.process.start()
        if self.conn.recv() != "ready":
            raise RuntimeError("the conventional pipeline's process did not start")

    def time(self, what: str) -> float:
        self.conn.send(what)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send("stop")
        self.process.join()


def time_interleaved(c: dict, args, device: torch.device) -> dict:
    """Warm everything up, then take turns: in every round, a training epoch, a model floor
    and a prediction pass of each side, so that a machine whose speed drifts over minutes
    slows all of them alike."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    conv, eng = RemoteSide(c, args, device), LocalSide(c, args, device)
    try:
        runs = {"conventional": {}, "engine": {}}
        turns = [
            (what, name, side)
            for what in ("train", "floor", "predict")
            for name, side in (("conventional", conv), ("engine", eng))
        ]
        for what, name, side in turns:
            runs[name][what + "_warmup"] = side.time(what)
        for _ in range(args.repeats):
            for what, name, side in turns:
                runs[name].setdefault(what, []).append(side.time(what))
    finally:
        conv.close()
    runs["engine"]["predict_chunk"] = eng.pipeline.engine.predict_chunk
    if device.type == "cuda":
        runs["engine"]["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return runs


def report(c: dict, runs: dict) -> dict:
    n, full = c["n"], c["full"]
    scale = full / n
    out = {
        "model": c["model"],
        "dataset": c["dataset"],
        "n": full,
        "measured_examples": n,
        "scaled_to": full,
        "augmentation": "crop_flip" if c["augment"] else "none",
    }
    if scale != 1:
        out["note"] = f"times measured on {n} examples and multiplied by {full}/{n}"
    best = {name: {what: min(r[what]) for what in ("train", "predict", "floor")} for name, r in runs.items()}
    for name, r in runs.items():
        out[name] = {
            "train_epoch_s": round(best[name]["train"] * scale, 3),
            "predict_s": round(best[name]["predict"] * scale, 3),
            "measured": {
                k: ([round(t, 3) for t in v] if isinstance(v, list) else round(v, 3) if isinstance(v, float) else v)
                for k, v in r.items()
            },
        }
    conv, eng = best["conventional"], best["engine"]
    out["speedup"] = {
        "train": round(conv["train"] / eng["train"], 2),
        "predict": round(conv["predict"] / eng["predict"], 2),
    }
    out["model_step_floor"] = {
        "conventional_model_train_epoch_s": round(conv["floor"] * scale, 3),
        "engine_model_train_epoch_s": round(eng["floor"] * scale, 3),
        "max_speedup_from_data_path": round(conv["train"] / conv["floor"], 2),
        "engine_over_its_floor": round(eng["train"] / eng["floor"], 2),
    }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=("lenet", "resnet18", "all"), default="lenet")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers of the conventional pipeline (default 8)")
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="examples per epoch (default: lenet 54000; resnet18 45000 on CUDA, "
        f"{RESNET_CPU_DEFAULT_N} on the CPU, scaled to 45000)",
    )
    p.add_argument("--repeats", type=int, default=2, help="timed epochs after one warm-up; the best is reported")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--predict-batch", type=int, default=256, help="conventional prediction batch (default 256)")
    p.add_argument(
        "--predict-chunk",
        type=int,
        default=None,
        help="engine prediction chunk (default: the engine's default for the device)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)")
    p.add_argument(
        "--compile",
        action="store_true",
        help="engine with torch.compile (meant for CUDA; on the CPU it needs a C++ compiler and measured slower)",
    )
    p.add_argument("--fashion-dir", default=FASHION_MNIST.default_dir)
    args = p.parse_args(argv)
    if args.repeats < 1 or (args.n is not None and args.n < args.batch_size):
        p.error("--repeats must be >= 1 and --n at least one batch")

    device = choose_device(args.device)
    n_threads = choose_threads(args.threads).apply().threads
    cases = ("lenet", "resnet18") if args.case == "all" else (args.case,)
    data = {c: case_data(c, args, device) for c in cases}
    runs = {c: time_interleaved(data[c], args, device) for c in cases}
    result = {
        "device": str(device) if device.type == "cpu" else f"cuda ({torch.cuda.get_device_name(device)})",
        "torch": torch.__version__,
        "torch_threads": n_threads,
        "cpu_cores": os.cpu_count(),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "engine": {
            "compile": bool(args.compile),
            "openmp_wait": threads.WAIT_POLICY_AT_IMPORT.describe(),
            "malloc_tuned": malloc_module.is_tuned(),
            "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
        },
        "conventional": {
            "workers": args.workers,
            "predict_batch": args.predict_batch,
            "persistent_workers": False,
            "openmp_wait": "GOMP_SPINCOUNT=300000 (libgomp's default)",
            "precision": "fp32",
        },
        "order": "interleaved epoch by epoch; the conventional side in a process of its own (default malloc)",
        "cases": {c: report(data[c], runs[c]) for c in cases},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

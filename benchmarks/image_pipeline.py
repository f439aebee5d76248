"""Image files to training batches: the packed store (:mod:`memomentum.store.packing`) against a
conventional per-image pipeline, on the same images, in one run.

Source images: ``--n`` synthetic 500 x 375 JPEGs (quality 90, seeded; smooth gradients and
soft blobs with texture and grain, about 40 KB each, like web photos), written once into
``--work-dir`` and reused by later runs.

Measured:

* ``pack``: :func:`pack_images` of all ``--n`` images, from scratch, in each format
  (``jpeg`` and ``raw``) with ``--workers`` processes: seconds and disk per 10,000 images.
* ``per_core``: images/s one process delivers, no DataLoader: the conventional per-image
  work (open with PIL, convert to RGB, resize to 256 x 256, pad 32 and random crop 256,
  random flip, to tensor, normalise with ImageNet's mean and std, then collate) against the
  packed store's whole-batch :meth:`PackedImages.read` (decode only: the rest is the
  device's job), and that device step itself on this CPU (:func:`memomentum.training.sources.crop_flip`
  with 32-pixel padding on the uint8 pixels, then float, normalised, channels_last).
* ``loader``: images/s delivered as device-ready float32 NCHW channels_last batches through
  ``--workers`` worker processes: the conventional ``DataLoader`` (batch 256, one image per
  ``__getitem__``) against the packed store read a whole batch per ``__getitem__`` by
  :class:`memomentum.training.sources.StreamedSource`, cropped, flipped and normalised in this
  process, as the device does. On this CPU the "device" work competes
  with the workers for the same cores; ``per_core`` separates the two, and the
  ``*_uint8_only`` entries time the packed loader alone (the uint8 batches a GPU is fed).
* ``projection``: the per-core rates times 16 cores against the 3,000 images/s a ResNet-50
  trains at on one GPU.

The pipelines take turns for ``--rounds`` rounds (the order rotating), each round on the same
``--images-per-round`` images drawn at random from all ``--n``; medians are reported and every
time is listed. All files are in the page cache (written just before), as they are after the
first epoch on a machine with enough memory.

    python benchmarks/image_pipeline.py --n 2000 --rounds 2
    python benchmarks/image_pipeline.py            # 20,000 images

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# memomentum before torch, as a run imports them (its OpenMP wait policy).
import memomentum  # noqa: F401
from memomentum.training import threads

# isort: split

import numpy as np
import torch
from epoch_speed import RandomCrop, RandomHorizontalFlip
from PIL import Image

from memomentum.data.dataset import IMAGENET_MEAN, IMAGENET_STD
from memomentum.store.packing import pack_images
from memomentum.store.reading import PackedImages
from memomentum.training.sources import StreamedSource, _normalise_images, crop_flip

SOURCE_WIDTH, SOURCE_HEIGHT, SOURCE_QUALITY = 500, 375, 90
RESNET50_IMAGES_PER_S = 3000  # what one GPU trains ResNet-50 at; the packed store must keep up
PROJECTED_CORES = 16
FORMATS = ("jpeg", "raw")


# -- source images ---------------------------------------------------------------------------
def _grain_bank(seed: int = 1234, count: int = 4) -> list[np.ndarray]:
    """Full-size sensor grain, made once and reused shifted (normal noise per image would
    cost more than the rest of the picture)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 2.5, (SOURCE_HEIGHT, SOURCE_WIDTH, 3)).round().astype(np.int16) for _ in range(count)]


def photo(rng: np.random.Generator, bank: list[np.ndarray]) -> np.ndarray:
    """A photo-like uint8 (375, 500, 3) image: a colour gradient and soft blobs with texture
    at a 4-pixel scale (drawn at a quarter of the size, enlarged bicubically), plus grain."""
    h, w = SOURCE_HEIGHT // 4 + 1, SOURCE_WIDTH // 4 + 1
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    img = rng.uniform(60, 190, 3) + rng.uniform(-60, 60, 3) * x + rng.uniform(-60, 60, 3) * y
    for _ in range(4):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
        img = img + rng.uniform(-80, 80, 3) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (r * r))
    img = img + rng.normal(0, 10, img.shape)
    big = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).resize(
        (SOURCE_WIDTH, SOURCE_HEIGHT), Image.Resampling.BICUBIC
    )
    grain = np.roll(bank[rng.integers(len(bank))], int(rng.integers(SOURCE_WIDTH)), axis=1)
    return np.clip(np.asarray(big, np.int16) + grain, 0, 255).astype(np.uint8)


def _write_sources(args: tuple[Path, int, int]) -> None:
    folder, start, stop = args
    bank = _grain_bank()
    for i in range(start, stop):
        path = folder / f"img{i:06d}.jpg"
        if not path.exists():
            rng = np.random.default_rng([2024, i])  # image i is the same whatever the chunking
            tmp = path.with_suffix(".tmp")
            Image.fromarray(photo(rng, bank)).save(tmp, "JPEG", quality=SOURCE_QUALITY)
            os.replace(tmp, path)


def source_images(work_dir: Path, n: int, workers: int) -> list[str]:
    """The ``n`` source JPEGs, written on first use (in parallel) and reused afterwards."""
    folder = work_dir / "sources"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [str(folder / f"img{i:06d}.jpg") for i in range(n)]
    if not all(os.path.exists(p) for p in paths):
        chunks = [(folder, s, min(s + 500, n)) for s in range(0, n, 500)]
        if workers == 1 or len(chunks) == 1:
            for chunk in chunks:
                _write_sources(chunk)
        else:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                pool.map(_write_sources, chunks)
    return paths


# -- the conventional pipeline: torchvision's loader and transforms, written out ---------------
def pil_loader(path: str) -> Image.Image:
    """torchvision.datasets.folder.pil_loader."""
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


class Resize:
    """torchvision.transforms.Resize((size, size)) on a PIL image (bilinear, aspect ignored)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, img: Image.Image) -> Image.Image:
        return img.resize((self.size, self.size), Image.Resampling.BILINEAR)


class ToTensor:
    """torchvision.transforms.ToTensor for RGB PIL images: C x H x W float in [0, 1]."""

    def __call__(self, img: Image.Image) -> torch.Tensor:
        t = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(img.height, img.width, 3)
        return t.permute(2, 0, 1).contiguous().to(dtype=torch.float32).div(255)


class Normalize:
    def __init__(self, mean, std):
        self.mean = torch.as_tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.as_tensor(std, dtype=torch.float32)[:, None, None]

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return t.sub_(self.mean).div_(self.std)


class FileDataset(torch.utils.data.Dataset):
    """One image file per item through the transforms, with its label (as ImageFolder)."""

    def __init__(self, paths: list[str], size: int, padding: int):
        self.paths = paths
        self.transforms = [
            Resize(size),
            RandomCrop(size, padding),
            RandomHorizontalFlip(),
            ToTensor(),
            Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        x = pil_loader(self.paths[i])
        for t in self.transforms:
            x = t(x)
        return x, 0


# -- the packed side -------------------------------------------------------------------------
class BatchReader(torch.utils.data.Dataset):
    """What each worker runs: one whole batch of uint8 images per ``__getitem__``, decoded
    straight into shared memory (the tensor then travels to the main process uncopied)."""

    def __init__(self, images: PackedImages):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, rows: np.ndarray) -> torch.Tensor:
        out = torch.empty((len(rows),) + self.images.shape[1:], dtype=torch.uint8).share_memory_()
        return self.images.read(rows, out=out)


class DeviceStep:
    """The device's share of the packed pipeline, as :class:`memomentum.training.sources.StreamedSource`
    does it: random crop with zero padding and flip on the uint8 pixels (:func:`crop_flip`),
    then float32 NCHW channels_last, normalised."""

    def __init__(self, padding: int, seed: int = 0):
        self.mean = torch.tensor(IMAGENET_MEAN)
        self.std = torch.tensor(IMAGENET_STD)
        self.zero = torch.zeros(3, dtype=torch.uint8)
        self.padding = padding
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, raw: torch.Tensor) -> torch.Tensor:
        cropped = crop_flip(raw.permute(0, 3, 1, 2), self.zero, self.generator, padding=self.padding)
        return _normalise_images(cropped.permute(0, 2, 3, 1), self.mean, self.std, channels_last=True)


# -- timed passes ----------------------------------------------------------------------------
def batches_of(order: np.ndarray, size: int) -> list[np.ndarray]:
    return [order[s : s + size] for s in range(0, len(order), size)]


def per_core_conventional(paths, order, args) -> None:
    data = FileDataset(paths, args.image_size, args.padding)
    collate = torch.utils.data.default_collate
    for rows in batches_of(order, args.batch_size):
        collate([data[int(i)] for i in rows])


def time_it(fn, *a) -> float:
    t0 = time.perf_counter()
    fn(*a)
    return time.perf_counter() - t0


def per_core_packed(images: PackedImages, order, args) -> None:
    out = np.empty((args.batch_size,) + images.shape[1:], np.uint8)
    for rows in batches_of(order, args.batch_size):
        images.read(rows, out=out[: len(rows)])


def per_core_device_step(raw: torch.Tensor, step: DeviceStep, batches: int) -> None:
    for _ in range(batches):
        step(raw)


def loader_conventional(paths, order, args) -> int:
    loader = torch.utils.data.DataLoader(
        FileDataset(paths, args.image_size, args.padding),
        batch_size=args.batch_size,
        sampler=order.tolist(),
        num_workers=args.workers,
    )
    n = 0
    for xb, _ in loader:
        xb = xb.contiguous(memory_format=torch.channels_last)  # what the model wants, on the device
        n += xb.shape[0]
    return n


def loader_packed_uint8(images: PackedImages, order, args) -> int:
    """The packed store's host side alone: uint8 batches as a GPU would be fed them."""
    loader = torch.utils.data.DataLoader(
        BatchReader(images), batch_size=None, sampler=batches_of(order, args.batch_size), num_workers=args.workers
    )
    return sum(raw.shape[0] for raw in loader)


def loader_packed(images: PackedImages, order, args) -> int:
    """What a streamed run's training loop receives: :class:`StreamedSource` batches, cropped,
    flipped and normalised."""
    source = StreamedSource(
        images,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        device=torch.device("cpu"),
        workers=args.workers,
        padding=args.padding,
    )
    generator = torch.Generator().manual_seed(0)
    return sum(x.shape[0] for x in source.batches(torch.as_tensor(order), args.batch_size, augment=generator))


def median_rate(times: list[float], images: int) -> float:
    return round(images / statistics.median(times), 1)


# -- main ------------------------------------------------------------------------------------
def pack_all(paths: list[str], args) -> tuple[dict, dict]:
    """Pack every format from scratch; returns the stores and their pack report."""
    stores, report = {}, {}
    per_10k = 10_000 / len(paths)
    for fmt in FORMATS:
        cache = args.work_dir / f"store-{fmt}"
        shutil.rmtree(cache, ignore_errors=True)
        t0 = time.perf_counter()
        stores[fmt] = pack_images(
            paths,
            cache_dir=cache,
            image_size=args.image_size,
            store_format=fmt,
            quality=args.quality,
            workers=args.workers,
            progress=False,
            what="benchmark images",
        )
        seconds = time.perf_counter() - t0
        disk = stores[fmt].disk_bytes
        report[fmt] = {
            "seconds_per_10k": round(seconds * per_10k, 1),
            "disk_gb_per_10k": round(disk * per_10k / 1e9, 3),
            "kb_per_image": round(disk / len(paths) / 1e3, 1),
            "images_per_s": round(len(paths) / seconds, 1),
            "images_per_s_per_worker": round(len(paths) / seconds / args.workers, 1),
        }
    sources_bytes = sum(os.path.getsize(p) for p in paths)
    report["sources"] = {
        "disk_gb_per_10k": round(sources_bytes * per_10k / 1e9, 3),
        "kb_per_image": round(sources_bytes / len(paths) / 1e3, 1),
    }
    return stores, report


def check_same_images(paths, stores, args) -> dict:
    """The raw store holds exactly what the conventional loader resizes to; the JPEG store
    is close to it (on a few images)."""
    rows = np.linspace(0, len(paths) - 1, 8).astype(int)
    expected = np.stack([np.asarray(Resize(args.image_size)(pil_loader(paths[i]))) for i in rows])
    if not np.array_equal(stores["raw"][rows], expected):
        raise SystemExit("the raw store differs from the conventional pipeline's resized images")
    diff = np.abs(stores["jpeg"][rows].astype(np.int16) - expected)
    return {
        "raw_equals_conventional_resize": True,
        "jpeg_mean_abs_diff": round(float(diff.mean()), 3),
        "jpeg_max_abs_diff": int(diff.max()),
    }


def run_rounds(paths, stores, args) -> dict:
    rng = np.random.default_rng(0)
    raw_batch = torch.from_numpy(stores["raw"][np.arange(min(args.batch_size, len(paths)))])
    device_step = DeviceStep(args.padding)
    device_batches = max(1, args.images_per_round // args.batch_size)
    device_images = device_batches * raw_batch.shape[0]
    per_core = {
        "conventional": lambda order: per_core_conventional(paths, order, args),
        "packed_jpeg": lambda order: per_core_packed(stores["jpeg"], order, args),
        "packed_raw": lambda order: per_core_packed(stores["raw"], order, args),
        "device_step_on_this_cpu": lambda order: per_core_device_step(raw_batch, device_step, device_batches),
    }
    loader = {
        "conventional": lambda order: loader_conventional(paths, order, args),
        "packed_jpeg": lambda order: loader_packed(stores["jpeg"], order, args),
        "packed_raw": lambda order: loader_packed(stores["raw"], order, args),
        "packed_jpeg_uint8_only": lambda order: loader_packed_uint8(stores["jpeg"], order, args),
        "packed_raw_uint8_only": lambda order: loader_packed_uint8(stores["raw"], order, args),
    }
    times = {"per_core": {k: [] for k in per_core}, "loader": {k: [] for k in loader}}
    warm = np.arange(min(args.batch_size, len(paths)))
    for fns in (per_core, loader):
        for fn in fns.values():  # warm-up: imports, first maps, allocator
            fn(warm)
    for r in range(args.rounds):
        order = rng.choice(len(paths), size=args.images_per_round, replace=False)
        for kind, fns in (("per_core", per_core), ("loader", loader)):
            names = list(fns)
            names = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
            for name in names:
                times[kind][name].append(time_it(fns[name], order))
    counts = {
        kind: dict.fromkeys(fns, args.images_per_round) for kind, fns in (("per_core", per_core), ("loader", loader))
    }
    counts["per_core"]["device_step_on_this_cpu"] = device_images
    out = {}
    for kind in times:
        out[kind] = {}
        for name, ts in times[kind].items():
            rate = median_rate(ts, counts[kind][name])
            entry = {"images_per_s": rate, "seconds": [round(t, 3) for t in ts]}
            if kind == "loader":
                entry["images_per_s_per_worker"] = round(rate / args.workers, 1)
            out[kind][name] = entry
    out["loader"]["packed_via"] = "memomentum.training.sources.StreamedSource"
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="source images (default 20000)")
    p.add_argument(
        "--work-dir",
        type=Path,
        default=Path("/tmp/memomentum-image-pipeline"),
        help="where the source images (reused) and the stores (re-packed every run) go",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="packing and loader worker processes (default: every core this process may use)",
    )
    p.add_argument("--rounds", type=int, default=3, help="timed rounds after a warm-up; medians are reported")
    p.add_argument("--images-per-round", type=int, default=2560, help="images each pipeline delivers per round")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--image-size", type=int, default=256, help="packed side (default 256, as Clothing1M)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality of the packed store")
    args = p.parse_args(argv)
    args.workers = args.workers or threads.available_cores()
    args.padding = max(1, args.image_size // 8)
    args.images_per_round = min(args.images_per_round, args.n)
    if args.n < 1 or args.rounds < 1 or args.images_per_round < 1 or args.workers < 1:
        p.error("--n, --rounds, --images-per-round and --workers must be positive")

    paths = source_images(args.work_dir, args.n, args.workers)
    stores, pack_report = pack_all(paths, args)
    same = check_same_images(paths, stores, args)
    rates = run_rounds(paths, stores, args)
    core = {k: v["images_per_s"] for k, v in rates["per_core"].items()}
    result = {
        "device": "cpu",
        "cpu_cores": threads.available_cores(),
        "workers": args.workers,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "openmp_wait": threads.WAIT_POLICY_AT_IMPORT.describe(),
        "n_images": args.n,
        "source": {
            "size": f"{SOURCE_WIDTH}x{SOURCE_HEIGHT}",
            "jpeg_quality": SOURCE_QUALITY,
            "kb_per_image": pack_report["sources"]["kb_per_image"],
        },
        "image_size": args.image_size,
        "padding": args.padding,
        "batch_size": args.batch_size,
        "store_jpeg_quality": args.quality,
        "rounds": args.rounds,
        "images_per_round": args.images_per_round,
        "pack": pack_report,
        "same_images": same,
        "per_core": rates["per_core"],
        "loader": rates["loader"],
        "ratio": {
            "per_core_packed_jpeg_vs_conventional": round(core["packed_jpeg"] / core["conventional"], 2),
            "per_core_packed_raw_vs_conventional": round(core["packed_raw"] / core["conventional"], 2),
            "loader_packed_jpeg_vs_conventional": round(
                rates["loader"]["packed_jpeg"]["images_per_s"] / rates["loader"]["conventional"]["images_per_s"], 2
            ),
            "loader_packed_raw_vs_conventional": round(
                rates["loader"]["packed_raw"]["images_per_s"] / rates["loader"]["conventional"]["images_per_s"], 2
            ),
            "loader_packed_jpeg_uint8_only_vs_conventional": round(
                rates["loader"]["packed_jpeg_uint8_only"]["images_per_s"]
                / rates["loader"]["conventional"]["images_per_s"],
                2,
            ),
        },
        "projection": {
            "cores": PROJECTED_CORES,
            "resnet50_needs_images_per_s": RESNET50_IMAGES_PER_S,
            **{
                f"{k}_images_per_s": round(core[k] * PROJECTED_CORES)
                for k in ("conventional", "packed_jpeg", "packed_raw")
            },
            "packed_jpeg_over_resnet50_need": round(core["packed_jpeg"] * PROJECTED_CORES / RESNET50_IMAGES_PER_S, 2),
            "conventional_over_resnet50_need": round(core["conventional"] * PROJECTED_CORES / RESNET50_IMAGES_PER_S, 2),
            "goal_3x_conventional_per_core_met": core["packed_jpeg"] >= 3 * core["conventional"],
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

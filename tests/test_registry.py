"""The dataset registry (memomentum/data/registry.py): one spec per named dataset that the
loader, the configuration, the report, ``memomentum run --help`` and ``list_datasets()`` ask.

Every spec's reader reads a miniature of its dataset (written here or by
:mod:`memomentum.testing`) and the run's default network is the spec's; a dataset
added to the table, with nothing but its entry and its reader, is loaded, listed, named in
the help, given its schedule, recognised in a folder, and runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import PIL  # noqa: F401 -- the writers need Pillow
import pytest
from test_array_readers import make_cifar10, make_cifar100, make_mnist

import memomentum
from memomentum.base.errors import InputError
from memomentum.cli import build_parser
from memomentum.config import RunConfig
from memomentum.data import dataset_from_arrays, load_dataset, load_image_files, registry
from memomentum.data.folders import read_image_folder
from memomentum.data.registry import (
    BENCHMARK,
    REAL_NOISE,
    SPECS,
    DatasetSpec,
    dataset_help,
    find_spec,
    known_class_names,
    list_datasets,
    recognised_in,
)
from memomentum.testing.clothing1m import write_clothing1m
from memomentum.testing.folders import write_image_folder
from memomentum.testing.real_noise import write_animal10n, write_food101n, write_webvision

# name -> a function writing a miniature of the dataset's files under a folder; returns --data-dir
MINIATURES = {
    "digits": lambda d: None,
    "mnist": lambda d: make_mnist(d) and d,
    "fashion-mnist": lambda d: make_mnist(d) and d,
    "cifar10": lambda d: make_cifar10(d / "cifar-10-batches-py") and d,
    "cifar100": lambda d: make_cifar100(d / "cifar-100-python") and d,
    "clothing1m": lambda d: write_clothing1m(d, per_class=2, n_clean_noisy=4, n_val_per_class=1, n_test_per_class=1)[
        "root"
    ],
    "animal10n": lambda d: write_animal10n(d, per_class=2, test_per_class=1)["root"],
    "food101n": lambda d: write_food101n(d / "Food-101N_release", per_class=2, n_verified_train=2, n_verified_val=1)[
        "root"
    ],
    "webvision": lambda d: write_webvision(d, per_class=1)["root"],
}


def test_every_spec_has_a_miniature_here():
    assert sorted(MINIATURES) == sorted(s.name for s in SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_specs_reader_loads_its_dataset_with_the_default_network_listed(spec, tmp_path):
    data_dir = MINIATURES[spec.name](tmp_path)
    ds = load_dataset(
        spec.name,
        data_dir=None if data_dir is None else str(data_dir),
        cache_dir=str(tmp_path / "cache") if spec.kind == REAL_NOISE else None,
        image_size=24 if spec.kind == REAL_NOISE else None,
        workers=0 if spec.kind == REAL_NOISE else None,
        progress=False,
    )
    listed = next(d for d in list_datasets() if d["name"] == spec.name)
    chosen = RunConfig(dataset=spec.name).resolved(ds.default_model).model  # what a run trains without --model
    assert (ds.name, chosen, listed["default_model"], listed["kind"]) == (
        spec.name,
        spec.default_model,
        spec.default_model,
        spec.kind,
    )
    if spec.num_classes and spec.kind == BENCHMARK:  # the miniatures of the releases have fewer classes
        assert ds.num_classes == spec.num_classes
    if data_dir is not None:  # its files, given as an image folder, are named for what they are
        with pytest.raises(InputError, match="not an image folder: use --dataset ") as refused:
            load_image_files(str(data_dir))
        assert spec.name in str(refused.value)


def test_the_specs_are_consistent():
    spellings = [s for spec in SPECS for s in spec.spellings()]
    assert len(spellings) == len(set(spellings)), "two datasets answer to one name"
    for spec in SPECS:
        assert callable(spec.read_function()) and spec.kind in (BENCHMARK, REAL_NOISE)
        assert not spec.class_names or len(spec.class_names) == spec.num_classes
        assert find_spec(spec.title) is spec and find_spec(f"  {spec.name.upper()} ") is spec
        for alias in spec.aliases:
            assert find_spec(alias) is spec
    benchmarks = tuple(s.name for s in SPECS if s.kind == BENCHMARK)
    assert benchmarks == memomentum.data.DATASETS


def test_list_datasets_is_public_and_names_every_dataset_the_loader_accepts():
    listed = memomentum.list_datasets()
    assert [d["name"] for d in listed] == [s.name for s in SPECS]
    for row in listed:
        assert set(row) == {"name", "title", "aliases", "kind", "default_model", "description"}
        assert row["description"] and find_spec(row["name"]).name == row["name"]
    with pytest.raises(InputError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


def test_the_help_of_dataset_options_is_the_registrys():
    text = dataset_help(default="digits")
    assert text.startswith("a named dataset: digits (default), mnist, fashion-mnist, ")
    assert all(s.name in text for s in SPECS) and "PATH.npz" in text
    images = dataset_help(images_only=True)
    assert all((s.name in images) == (s.kind == REAL_NOISE) for s in SPECS)
    run = build_parser().commands["run"]
    shown = next(a.help for a in run._actions if "--dataset" in a.option_strings)
    assert shown == dataset_help(default=RunConfig().dataset)


def test_the_data_dir_help_names_each_datasets_default_folder():
    commands = build_parser().commands
    run_help = next(a.help for a in commands["run"]._actions if "--data-dir" in a.option_strings)
    prepare_help = next(a.help for a in commands["prepare"]._actions if "--data-dir" in a.option_strings)
    for spec in SPECS:
        if spec.default_dir:
            assert f"{spec.name} {spec.default_dir}" in run_help
            assert (f"{spec.name} {spec.default_dir}" in prepare_help) == (spec.kind == REAL_NOISE)


def test_class_names_where_the_release_fixes_them():
    assert known_class_names("Fashion-MNIST")[7] == "Sneaker"
    assert known_class_names("cifar10")[0] == "airplane"
    assert known_class_names("digits") is None and known_class_names("my.npz") is None


# --------------------------------------------------------------------------- adding a dataset


def _read_tiny(spec: DatasetSpec, data_dir: str | None):
    """A benchmark reader: two separable blobs of features, clean labels."""
    rng = np.random.default_rng(0)
    y = np.arange(80) % 2
    x = rng.normal(size=(80, 4)) + 3.0 * y[:, None]
    ds = dataset_from_arrays(x, y, name=spec.name)
    return dataclasses.replace(ds, default_model=spec.default_model, labels_are_clean=True)


TINY = DatasetSpec(
    name="tiny-blobs",
    title="Tiny Blobs",
    kind=BENCHMARK,
    description="two blobs of 40 points in 4 dimensions",
    reader=_read_tiny,
    default_model="mlp",
    aliases=("blobs4",),
    schedule={"epochs": 2, "batch_size": 16, "max_outer_loop": 1, "max_inner_loop": 2},
    num_classes=2,
)


def test_a_new_benchmark_is_one_entry_and_one_reader(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "SPECS", (*registry.SPECS, TINY))
    assert load_dataset("Tiny_Blobs").name == "tiny-blobs" and load_dataset("blobs4").num_classes == 2
    assert list_datasets()[-1]["name"] == "tiny-blobs" and "tiny-blobs" in dataset_help()
    cfg = RunConfig(dataset="blobs4", out=str(tmp_path / "run"), progress=False, threads=1)
    assert cfg.noise_type == "instance"  # a benchmark: noise is added to its clean labels
    assert (cfg.resolved("mlp").epochs, cfg.resolved("mlp").batch_size) == (2, 16)  # its schedule
    result = memomentum.run(dataclasses.replace(cfg, noise_type="symmetric", noise_rate=0.2))
    summary = json.loads((Path(result.run_dir) / "summary.json").read_text())
    assert (summary["dataset"], summary["model"]) == ("blobs4", "mlp")


def test_a_new_image_release_is_one_entry_and_one_reader(monkeypatch, tmp_path):
    def read_release(root: Path, *, image_size: int):
        return dataclasses.replace(read_image_folder(root, image_size=image_size), name="tiny-release")

    spec = DatasetSpec(
        name="tiny-release",
        title="Tiny Release",
        kind=REAL_NOISE,
        description="a folder of images, one sub-folder per class, with a marker file",
        reader=read_release,
        default_model="resnet34",
        markers=("RELEASE.txt",),
        image_size=16,
    )
    monkeypatch.setattr(registry, "SPECS", (*registry.SPECS, spec))
    root = write_image_folder(tmp_path / "release", per_class=3)["root"]
    (root / "RELEASE.txt").write_text("tiny\n")
    ds = load_dataset("tiny-release", data_dir=str(root), cache_dir=str(tmp_path / "c"), workers=0, progress=False)
    assert (ds.name, ds.default_model, ds.x_train.shape[1:]) == ("tiny-release", "resnet34", (16, 16, 3))
    assert RunConfig(dataset="Tiny-Release").noise_type == "none"  # real noise: its labels are kept
    assert recognised_in(root) is spec
    with pytest.raises(InputError, match="is a tiny-release release, not an image folder"):
        load_image_files(str(root))

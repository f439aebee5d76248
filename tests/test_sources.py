"""Data sources: streamed batches are exactly the resident ones, so a streamed run is the
resident run."""

import multiprocessing

import numpy as np
import pytest
import torch

from memomentum import RunConfig
from memomentum.base.errors import InputError
from memomentum.data import dataset_from_arrays
from memomentum.entrypoints.api import run
from memomentum.runner.prepare import choose_stream
from memomentum.training.sources import StreamedSource, to_device_data

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def _images(n=70, size=12, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_batches_equal_resident_batches_in_any_order(workers):
    x = _images()
    rows = np.arange(5, 65)  # a split: the source sees only these rows of the images
    resident = to_device_data(x[rows], mean=MEAN, std=STD, device=torch.device("cpu"), channels_last=True, padding=3)
    streamed = StreamedSource(x, rows=rows, mean=MEAN, std=STD, device=torch.device("cpu"), workers=workers, padding=3)
    assert len(streamed) == len(resident) == 60
    assert streamed.example_shape == resident.example_shape == (3, 12, 12)
    assert torch.equal(streamed.pad_value, resident.pad_value) and streamed.padding == 3
    order = torch.randperm(60, generator=torch.Generator().manual_seed(1))
    for index in (order, None):
        got = list(streamed.batches(index, 16))
        want = list(resident.batches(index, 16))
        assert [b.shape[0] for b in got] == [16, 16, 16, 12]
        for g, w in zip(got, want):
            assert torch.equal(g, w)
            assert g.is_contiguous(memory_format=torch.channels_last)


def test_stopping_early_shuts_the_readers_down():
    x = _images(n=200)
    streamed = StreamedSource(x, mean=MEAN, std=STD, device=torch.device("cpu"), workers=2)
    batches = streamed.batches(torch.arange(200), 10)
    next(batches)
    readers = multiprocessing.active_children()
    assert len(readers) == 2 and all(p.is_alive() for p in readers)
    batches.close()  # what the engine does when a run pauses mid-epoch
    assert not any(p.is_alive() for p in readers) and multiprocessing.active_children() == []
    assert [b.shape[0] for b in streamed.batches(None, 100)] == [100, 100]


def test_the_choice_follows_the_size_and_the_flag(monkeypatch):
    ds = dataset_from_arrays(_images(), np.arange(70) % 3)
    cpu = torch.device("cpu")
    assert choose_stream(ds, cpu, None) is False and choose_stream(ds, cpu, True) is True
    monkeypatch.setattr("memomentum.runner.prepare.resident_budget", lambda device: 100)  # 70 x 432 floats do not fit
    assert choose_stream(ds, cpu, None) is True and choose_stream(ds, cpu, False) is False
    # a GPU keeps images as uint8: a quarter of the bytes
    monkeypatch.setattr("memomentum.runner.prepare.resident_budget", lambda device: 70 * 432 * 2)
    assert choose_stream(ds, cpu, None) is True and choose_stream(ds, torch.device("cuda"), None) is False
    table = dataset_from_arrays(np.zeros((10, 4), np.float32), np.arange(10) % 2)
    with pytest.raises(InputError, match=r"--stream reads images.*holds feature vectors, not images"):
        choose_stream(table, cpu, True)


def test_a_streamed_run_is_bit_identical_to_the_resident_run():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 240)
    x = (rng.integers(0, 60, (240, 16, 16, 3)) + 60 * y[:, None, None, None]).astype(np.uint8)  # learnable
    ds = dataset_from_arrays(x, y, x[:40], y[:40])
    results = []
    for stream, workers in ((False, None), (True, 2)):
        cfg = RunConfig(
            dataset="arrays",
            model="lenet",
            epochs=2,
            max_outer_loop=1,
            max_inner_loop=2,
            batch_size=32,
            noise_type="symmetric",
            noise_rate=0.2,
            threads=1,
            progress=False,
            stream=stream,
            workers=workers,
        )
        results.append(run(cfg, write=False, dataset=ds))
    (a, b) = results
    assert a.summary["rounds"] == b.summary["rounds"] and a.procedure.state.history == b.procedure.state.history
    assert a.summary["test_accuracy"] == b.summary["test_accuracy"]
    wa, wb = a.procedure.state.run_best_weights, b.procedure.state.run_best_weights
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize(
    "dtype, size, padding", [(torch.float32, 64, 8), (torch.uint8, 80, 32), (torch.float32, 12, 4)]
)
def test_crop_flip_by_slices_equals_the_gather(dtype, size, padding):
    from memomentum.training.sources import _crop_flip_by_gather, _crop_flip_by_slices, draw_crop_flip

    x = torch.randint(0, 256, (40, 3, size, size)).to(dtype).contiguous(memory_format=torch.channels_last)
    pad = torch.tensor([7, 8, 9]).to(dtype)
    dy, dx, flip = draw_crop_flip(40, padding, torch.Generator().manual_seed(2), x.device)
    got = _crop_flip_by_slices(x, pad, dy, dx, flip, padding)
    assert torch.equal(got, _crop_flip_by_gather(x, pad, dy, dx, flip, padding))
    assert got.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("size", [12, 72])  # the gather and the slices paths
def test_augmented_streamed_batches_equal_augmented_resident_batches(size):
    """The streamed source crops raw uint8 pixels and normalises afterwards; the resident one
    crops normalised floats: the same draws give the same floats."""
    x = _images(n=50, size=size)
    kw = dict(mean=MEAN, std=STD, device=torch.device("cpu"), padding=size // 8)
    resident = to_device_data(x, channels_last=True, **kw)
    streamed = StreamedSource(x, workers=0, **kw)
    order = torch.randperm(50, generator=torch.Generator().manual_seed(1))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for a, b in zip(resident.batches(order, 16, augment=g1), streamed.batches(order, 16, augment=g2)):
        assert torch.equal(a, b)
    assert torch.equal(g1.get_state(), g2.get_state())


@pytest.mark.parametrize("size", [12, 72])  # the gather and the slices paths
def test_uint8_resident_images_give_the_float_resident_batches(size):
    """What a GPU keeps resident (uint8, normalised batch by batch) gives the floats that the
    CPU's normalised-once tensor gives: in any order, augmented or not, shard by shard, and
    drawing from the generator alike."""
    from memomentum.training.sources import ResidentImages

    x = _images(n=50, size=size)
    kw = dict(mean=MEAN, std=STD, device=torch.device("cpu"), channels_last=True, padding=size // 8)
    floats, images = to_device_data(x, **kw), to_device_data(x, keep_uint8=True, **kw)
    assert isinstance(images, ResidentImages) and images.x.dtype == torch.uint8
    assert len(images) == 50 and images.example_shape == floats.example_shape == (3, size, size)
    assert torch.equal(images.pad_value, floats.pad_value)
    order = torch.randperm(50, generator=torch.Generator().manual_seed(1))
    for index, shard in ((order, None), (None, None), (order, (1, 2))):
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        got = list(images.batches(index, 16, augment=g1, shard=shard))
        want = list(floats.batches(index, 16, augment=g2, shard=shard))
        assert len(got) == len(want) == 4
        for a, b in zip(got, want):
            assert torch.equal(a, b) and a.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(g1.get_state(), g2.get_state())
    g1, g2 = torch.Generator().manual_seed(6), torch.Generator().manual_seed(6)
    images.skip_draws([16, 3], g1)
    floats.skip_draws([16, 3], g2)
    assert torch.equal(g1.get_state(), g2.get_state())
    plain = list(images.batches(order, 16))
    assert all(torch.equal(a, b) for a, b in zip(plain, floats.batches(order, 16)))

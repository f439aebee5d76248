"""The packed image store (memomentum.store): exact pixels, order, views, pickling into
DataLoader workers, reuse, re-packing of changed files, resuming an interrupted pack, and the
errors a user can meet."""

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import simplejpeg  # noqa: F401 -- the test extra installs Pillow and simplejpeg: no silent skip
import torch
from PIL import Image

from memomentum.base.errors import InputError
from memomentum.store import layout, shards
from memomentum.store.layout import default_cache_dir
from memomentum.store.packing import pack_images
from memomentum.store.reading import PackedImages

SIZE = 24  # packed side: small keeps the tests fast


def _photo(rng, height: int, width: int) -> np.ndarray:
    """A smooth colour gradient with a little noise (what JPEG is made for)."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 200 / width, yy * 200 / height, (xx + yy) * 100 / (width + height) + 50], axis=-1)
    return np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)


def _write_images(folder: Path, n_jpeg: int = 10, seed: int = 0) -> list[str]:
    """``n_jpeg`` JPEGs of assorted sizes, then an RGBA and a grayscale PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_jpeg):
        h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
        p = folder / f"img{i:02d}.jpg"
        Image.fromarray(_photo(rng, h, w)).save(p, quality=90)
        paths.append(str(p))
    rgba = np.concatenate([_photo(rng, 30, 40), rng.integers(0, 256, (30, 40, 1), dtype=np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(_photo(rng, 35, 25)[..., 0], "L").save(folder / "gray.png")
    return paths + [str(folder / "rgba.png"), str(folder / "gray.png")]


def _reference(paths) -> np.ndarray:
    """torchvision's default_loader + Resize((S, S)) on PIL images, written out."""
    return np.stack(
        [np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)) for p in paths]
    )


def _pack(paths, cache, fmt="jpeg", **kw):
    kw = {"workers": 1, "shard_size": 4, "progress": False, **kw}
    return pack_images(paths, cache_dir=cache, image_size=SIZE, store_format=fmt, **kw)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[str]:
    return _write_images(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def jpeg_store(images, tmp_path_factory) -> PackedImages:
    return _pack(images, tmp_path_factory.mktemp("cache"), "jpeg")


def _count_shards(monkeypatch) -> list:
    """Record every shard packed in this process."""
    packed, original = [], shards._pack_shard

    def counting(shard, report=None):
        packed.append(shard.start)
        return original(shard, report)

    monkeypatch.setattr(shards, "_pack_shard", counting)
    return packed


def _store_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name.startswith("shard-")}


def test_raw_store_holds_exactly_pils_resized_pixels(images, tmp_path):
    packed = _pack(images, tmp_path, "raw")
    expected = _reference(images)
    assert packed.shape == (12, SIZE, SIZE, 3) and packed.ndim == 4 and packed.dtype == np.uint8
    assert len(packed) == 12 and packed.nbytes == expected.nbytes
    np.testing.assert_array_equal(packed.to_array(), expected)
    np.testing.assert_array_equal(packed[3], expected[3])
    np.testing.assert_array_equal(packed[-1], expected[-1])  # the grayscale PNG, as RGB
    np.testing.assert_array_equal(packed[2:9:3], expected[2:9:3])
    np.testing.assert_array_equal(packed[np.arange(12) % 3 == 0], expected[::3])
    np.testing.assert_array_equal(packed[[1, 5], :2, 3], expected[[1, 5], :2, 3])
    with pytest.raises(IndexError):
        packed[12]


def test_jpeg_store_is_close_to_the_resized_pixels_and_much_smaller_than_raw(images, jpeg_store):
    decoded = jpeg_store.to_array()
    assert decoded.shape == (12, SIZE, SIZE, 3) and decoded.dtype == np.uint8
    diff = np.abs(decoded.astype(np.int16) - _reference(images))
    assert diff.mean() < 2.0 and diff.max() < 40
    raw_bytes = 12 * SIZE * SIZE * 3
    shards = sum(p.stat().st_size for p in jpeg_store.directory.glob("shard-*.jpegs"))
    assert shards < raw_bytes  # tiny noisy images: JPEG's headers weigh; still smaller


def test_reads_follow_the_order_asked_and_views_share_the_packed_bytes(jpeg_store):
    full = jpeg_store.to_array()
    order = np.random.default_rng(1).permutation(12)
    np.testing.assert_array_equal(jpeg_store[order], full[order])
    np.testing.assert_array_equal(jpeg_store[torch.as_tensor(order)], full[order])
    view = jpeg_store.subset(order)
    assert len(view) == 12 and view.shape == jpeg_store.shape
    np.testing.assert_array_equal(view[[0, 5]], full[order[[0, 5]]])
    np.testing.assert_array_equal(view.subset(slice(2, 6))[1], full[order[3]])
    # many entries over few packed images: the full-scale rehearsal's layout
    entries = np.random.default_rng(2).integers(0, 12, 5000)
    many = PackedImages.from_index(jpeg_store.directory, entries)
    assert many.shape == (5000, SIZE, SIZE, 3) and many.nbytes == 5000 * SIZE * SIZE * 3
    rows = np.array([0, 4999, 17, 17])
    out = torch.empty((4, SIZE, SIZE, 3), dtype=torch.uint8)  # a caller's buffer (pinned, shared, ...)
    assert many.read(rows, out=out) is out
    np.testing.assert_array_equal(out.numpy(), full[entries[rows]])
    with pytest.raises(ValueError, match="C-contiguous uint8"):
        many.read(rows, out=np.empty((3, SIZE, SIZE, 3), np.uint8))


class _Batches(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, rows):
        return torch.from_numpy(self.images.read(rows))


def test_pickles_cheaply_and_reads_in_dataloader_workers(jpeg_store):
    big = jpeg_store.subset(np.arange(100_000) % 12)
    big[0]  # maps a shard in this process: the map must not travel
    blob = pickle.dumps(big)
    assert len(blob) < 100_000 * 16 + 10_000  # the index (16 bytes an entry) and little else
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again[[7, 99_999]], big[[7, 99_999]])
    plan = [np.array([3, 1, 4]), np.array([1, 5, 9, 2]), np.array([6, 5]), np.array([3, 5, 8, 9, 7])]
    loader = torch.utils.data.DataLoader(_Batches(big), batch_size=None, sampler=plan, num_workers=2)
    got = [b.numpy() for b in loader]
    for rows, batch in zip(plan, got):
        np.testing.assert_array_equal(batch, jpeg_store.to_array()[rows % 12])


def test_a_second_call_reuses_the_store_and_a_changed_file_repacks_its_shard(images, tmp_path, monkeypatch, capsys):
    src = tmp_path / "src"
    paths = _write_images(src, n_jpeg=6, seed=3)  # 8 images: shards [0,4) and [4,8)
    packed = _count_shards(monkeypatch)
    first = _pack(paths, tmp_path / "cache", "raw")
    assert packed == [0, 4] and "packing 8 images into" in capsys.readouterr().err
    mtimes = {p.name: p.stat().st_mtime_ns for p in first.directory.iterdir()}
    second = _pack(paths, tmp_path / "cache", "raw")
    assert packed == [0, 4] and capsys.readouterr().err == ""  # nothing packed, nothing said
    assert {p.name: p.stat().st_mtime_ns for p in second.directory.iterdir()} == mtimes
    # replace image 5 (in the second shard) by another picture
    Image.fromarray(_photo(np.random.default_rng(9), 50, 50)[::-1]).save(paths[5], quality=80)
    os.utime(paths[5], ns=(10**18, 10**18))
    third = _pack(paths, tmp_path / "cache", "raw")
    assert packed == [0, 4, 4]
    message = capsys.readouterr().err
    assert f"1 of the 8 images changed since they were packed into {third.directory}" in message
    assert paths[5] in message and "re-packing the 1 of 2 shards" in message
    np.testing.assert_array_equal(third.to_array(), _reference(paths))
    assert third.directory == first.directory


def test_an_interrupted_pack_resumes_with_its_finished_shards(images, tmp_path, monkeypatch, capsys):
    original, calls = shards._pack_shard, []

    def interrupted(shard, report=None):
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the third shard is being packed
        calls.append(shard.start)
        return original(shard, report)

    monkeypatch.setattr(shards, "_pack_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _pack(images, tmp_path / "cache")
    directory = next((tmp_path / "cache").iterdir())
    assert not (directory / "manifest.json").exists()
    assert len(list(directory.glob("shard-*.jpegs"))) == 2
    done = {n: (directory / n).stat().st_mtime_ns for n in _store_files(directory)}
    monkeypatch.setattr(shards, "_pack_shard", original)
    packed = _count_shards(monkeypatch)
    resumed = _pack(images, tmp_path / "cache")
    assert packed == [8]  # 12 images in shards of 4: only the third one was left
    assert "resuming the packing of 12 images" in capsys.readouterr().err
    assert all((directory / n).stat().st_mtime_ns == t for n, t in done.items())  # finished shards untouched
    # the same bytes as an uninterrupted pack by a pool of two worker processes
    whole = _pack(images, tmp_path / "other", workers=2)
    assert _store_files(whole.directory) == _store_files(resumed.directory)
    np.testing.assert_array_equal(whole.to_array(), resumed.to_array())


def test_undecodable_files_are_all_named(images, tmp_path):
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    garbage, truncated = bad_dir / "garbage.jpg", bad_dir / "truncated.jpg"
    garbage.write_bytes(b"this is not an image")
    truncated.write_bytes(Path(images[0]).read_bytes()[:300])
    paths = [images[0], str(garbage), images[1], images[2], images[3], str(truncated)]  # two shards
    with pytest.raises(InputError) as e:
        _pack(paths, tmp_path / "cache")
    message = str(e.value)
    assert message.startswith("2 of the 6 images cannot be decoded as images: ")
    assert str(garbage) in message and str(truncated) in message and "\n" not in message
    assert f"{garbage} (not an image format Pillow reads)" in message and "BufferedReader" not in message
    listing = next((tmp_path / "cache").iterdir()) / "undecodable.txt"
    assert [line.split("\t")[0] for line in listing.read_text().splitlines()] == [str(garbage), str(truncated)]


def test_missing_files_and_bad_settings_are_input_errors(images, tmp_path):
    with pytest.raises(InputError, match=r"1 of the 2 images cannot be found or read: .*nothere\.jpg"):
        _pack([images[0], str(tmp_path / "nothere.jpg")], tmp_path / "cache")
    with pytest.raises(InputError, match="unknown store format 'png'; choose one of jpeg, raw"):
        _pack(images, tmp_path / "cache", "png")
    with pytest.raises(InputError, match="quality must be an integer from 1 to 100"):
        _pack(images, tmp_path / "cache", quality=0)


def test_an_unwritable_cache_dir_is_named_with_the_option(images, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(
        InputError,
        match=r"cannot write the packed images in the cache directory .*a-file"
        r".*--cache-dir",
    ):
        _pack(images, blocker / "cache")


def test_missing_libraries_say_how_to_install_them(images, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "simplejpeg", None)  # import simplejpeg now fails
    with pytest.raises(InputError, match=r'pip install "memomentum\[images\]"'):
        _pack(images, tmp_path / "cache")


def test_a_raw_store_needs_no_simplejpeg(images, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "simplejpeg", None)  # as on a machine with Pillow alone
    packed = _pack(images, tmp_path / "cache", "raw")
    assert packed.read(np.arange(2)).shape[0] == 2
    assert len(packed) == len(images)


def test_default_cache_dir_is_beside_the_data_when_writable(tmp_path, monkeypatch):
    assert default_cache_dir(tmp_path) == tmp_path / ".memomentum-cache"
    monkeypatch.setattr(layout.os, "access", lambda *a, **k: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir(tmp_path) == tmp_path / "xdg" / "memomentum"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir(tmp_path) == Path("~/.cache/memomentum").expanduser()

"""``memomentum prepare``: pack an image dataset into its store once (a run does it on first use)."""

from __future__ import annotations

from ..base.errors import InputError
from ..config import RunConfig
from ..data.registry import data_dir_help, dataset_help
from .parser import Parser, config_default
from .run import IMAGE_OPTIONS


def add_parser(sub) -> Parser:
    pr = sub.add_parser("prepare", help="pack an image dataset once (run does it on first use)")
    pr.add_argument(
        "--dataset",
        required=True,
        help=dataset_help(images_only=True),
    )
    pr.add_argument("--data-dir", dest="data_dir", default=None, help=data_dir_help(images_only=True))
    for flag, kw in IMAGE_OPTIONS.items():
        pr.add_argument(flag, default=None, **kw)
    pr.add_argument(
        "--label-column",
        dest="label_column",
        default=None,
        metavar="NAME",
        help=f"a table of images: the column holding each row's label (default {config_default('label_column')})",
    )
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    return pr


def command(args) -> int:
    from ..data import load_image_files, pack_image_files
    from ..store.reading import PackedImages

    given = {
        dest: getattr(args, dest)
        for dest in [kw["dest"] for kw in IMAGE_OPTIONS.values()] + ["label_column"]
        if getattr(args, dest) is not None
    }
    cfg = RunConfig(dataset=args.dataset, data_dir=args.data_dir, progress=not args.quiet, **given)
    files = load_image_files(
        cfg.dataset,
        data_dir=cfg.data_dir,
        image_size=cfg.image_size,
        train_set=cfg.train_set,
        label_column=cfg.label_column,
        cache_dir=cfg.cache_dir,
    )
    if files is None:
        raise InputError(
            f"prepare packs image files: --dataset must be an image release (clothing1m, ...), a folder "
            f"of images with one sub-folder per class or a table of images, got {args.dataset!r}"
        )
    ds = pack_image_files(
        files, cache_dir=cfg.cache_dir, store_format=cfg.store_format, workers=cfg.workers, progress=cfg.progress
    )
    parts = [
        (name, x)
        for name, x in (("training", ds.x_train), ("validation", ds.x_val), ("test", ds.x_test))
        if isinstance(x, PackedImages)
    ]  # what pack_image_files gives, or None
    for name, x in parts:
        print(f"{name}: {len(x)} images of {x.shape[1]} x {x.shape[2]} in {x.directory}")
    return 0

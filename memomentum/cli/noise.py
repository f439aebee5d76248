"""``memomentum noise``: add synthetic label noise to a file of labels (the generators of
:mod:`memomentum.noise.labels`, as a run draws them)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..base.errors import InputError
from ..noise.files import read_labels, read_labels_matrix, write_labels
from ..noise.labels import NOISE_TYPES, make_noisy_labels_for_cli
from .parser import Parser, config_default, number, one_of, positive_int


def add_parser(sub) -> Parser:
    n = sub.add_parser("noise", help="add synthetic label noise to a label file")
    n.add_argument("--labels", required=True, metavar="PATH", help="clean labels, .npy or .csv (one per line)")
    n.add_argument("--out", required=True, metavar="PATH", help="where to write the noisy labels (.npy or .csv)")
    n.add_argument("--noise-type", required=True, help=one_of([t for t in NOISE_TYPES if t != "none"], last=", "))
    n.add_argument(
        "--noise-rate",
        type=number,
        default=None,
        help="noise rate in [0, 1) (default 0); not for --noise-type transition, whose matrix sets the rates",
    )
    n.add_argument("--seed", type=int, default=config_default("seed"))
    n.add_argument("--num-classes", type=positive_int, help="K (default: largest label + 1)")
    n.add_argument(
        "--features", metavar="PATH", help="for instance noise: .npy array with one row (or image) per label"
    )
    n.add_argument("--transition", metavar="PATH", help="for --noise-type transition: K x K matrix (.npy/.csv)")
    return n


def _refuse_same_file(out: str, given: str, option: str) -> None:
    """--out must not name an input: writing the noisy labels there would destroy it."""
    out_path, in_path = Path(out).expanduser(), Path(given).expanduser()
    same = out_path.resolve() == in_path.resolve() or (
        out_path.exists() and in_path.exists() and os.path.samefile(out_path, in_path)
    )
    if same:
        raise InputError(
            f"--out {out} is the file given to {option}; writing there would overwrite the input, "
            f"so choose another --out"
        )


def command(args) -> int:
    _refuse_same_file(args.out, args.labels, "--labels")
    if args.features:
        _refuse_same_file(args.out, args.features, "--features")
    labels = read_labels(args.labels)
    k = args.num_classes or (int(labels.max()) + 1 if labels.size else 0)
    features = None
    if args.features:
        try:
            features = np.load(args.features, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read the features file {args.features}: {e}") from None
    transition = read_labels_matrix(args.transition) if args.transition else None
    result = make_noisy_labels_for_cli(
        labels,
        noise_type=args.noise_type,
        noise_rate=args.noise_rate,
        seed=args.seed,
        num_classes=k,
        features=features,
        transition=transition,
    )
    write_labels(args.out, result.labels)
    print(
        f"wrote {result.labels.size} noisy labels to {args.out}; realised noise rate {100 * result.realised_rate:.2f}%"
    )
    return 0

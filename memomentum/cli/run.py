"""``memomentum run``: train with Me-Momentum (or the cross-entropy baseline) and write a run
directory. Its options (each one a :class:`~memomentum.config.RunConfig` field) are also the
options of ``memomentum grid`` (as lists) and, for image files, of ``memomentum prepare``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import Any

from ..base.checks import counted
from ..base.errors import InputError
from ..config import (
    CLOTHING1M_SCHEDULE,
    DEFAULT_NOISE_RATE,
    DEFAULT_NOISE_TYPE,
    DEVICES,
    METHODS,
    MODEL_NAMES,
    MODES,
    RATED_NOISE_TYPES,
    REFERENCE_SCHEDULE,
    STORE_FORMATS,
    TRAIN_SETS,
    RunConfig,
)
from ..data.registry import data_dir_help, dataset_help, model_help
from ..noise.labels import NOISE_TYPES
from ..runner import files
from .parser import Parser, config_default, in_words, milestones, number, one_of, positive_int, top_parser

# CLI option -> RunConfig field, for the options of `memomentum run`.
RUN_OPTIONS: dict[str, dict[str, Any]] = {
    "--dataset": dict(
        dest="dataset",
        help=dataset_help(default=RunConfig.dataset),
    ),
    "--label-column": dict(
        dest="label_column",
        metavar="NAME",
        help=f"for a table (.csv, .parquet, parquet shards): the column holding each row's label (default {config_default('label_column')}); numeric columns are the features (or one column of images), a column split (train/test) marks a test set",
    ),
    "--data-dir": dict(
        dest="data_dir",
        help=data_dir_help(),
    ),
    "--noise-type": dict(
        dest="noise_type", help=one_of(NOISE_TYPES, DEFAULT_NOISE_TYPE, {"asymmetric": "CIFAR-10"}, last=", ")
    ),
    "--noise-rate": dict(
        dest="noise_rate",
        type=number,
        help=f"noise rate in [0, 1) for {', '.join(RATED_NOISE_TYPES[:-1])} and {RATED_NOISE_TYPES[-1]} noise (default {in_words(DEFAULT_NOISE_RATE)}); refused with none, transition (the matrix sets the rates) and --human-labels",
    ),
    "--transition": dict(
        dest="transition_path",
        metavar="PATH",
        help="K x K transition matrix (.npy/.csv, row = clean class) for --noise-type transition",
    ),
    "--human-labels": dict(
        dest="human_labels_path",
        metavar="PATH",
        help="CIFAR-10N/100N label file (.pt or .npy): use these real noisy labels",
    ),
    "--human-labels-key": dict(
        dest="human_labels_key",
        metavar="KEY",
        help="which labels of the CIFAR-N file (default worse_label / noisy_label)",
    ),
    "--seed": dict(
        dest="seed",
        type=int,
        help=f"seed for noise (unless --noise-seed), split, initialisation and data order (default {config_default('seed')})",
    ),
    "--noise-seed": dict(
        dest="noise_seed",
        type=int,
        help="seed for synthetic noise alone (default: --seed); fixed while --seed changes, the noisy labels stay the same (for memomentum consensus)",
    ),
    "--method": dict(
        dest="method", choices=METHODS, help=one_of(METHODS, config_default("method"), {"ce": "cross-entropy baseline"})
    ),
    "--mode": dict(
        dest="mode",
        choices=MODES,
        help=one_of(
            MODES,
            config_default("mode"),
            {
                "benchmark": "the reference main.py, noisy validation and early stopping",
                "clothing1m": "the reference Clothing.py: clean validation set, per-class checkpoints, class-weighted loss, per-class extraction; --epochs is then epochs per round, --max-inner-loop the number of rounds",
            },
        ),
    ),
    "--model": dict(
        dest="model",
        help=f"{', '.join(MODEL_NAMES)} ({model_help()})",
    ),
    "--epochs": dict(
        dest="epochs", type=positive_int, help=f"epochs per phase (reference: {REFERENCE_SCHEDULE['epochs']})"
    ),
    "--max-outer-loop": dict(
        dest="max_outer_loop",
        type=positive_int,
        help=f"outer loops (reference: {REFERENCE_SCHEDULE['max_outer_loop']})",
    ),
    "--max-inner-loop": dict(
        dest="max_inner_loop",
        type=positive_int,
        help=f"inner loop bound: at most this minus one inner rounds (reference: {REFERENCE_SCHEDULE['max_inner_loop']})",
    ),
    "--lr": dict(dest="lr", type=number, help=f"learning rate (reference: {in_words(REFERENCE_SCHEDULE['lr'])})"),
    "--momentum": dict(
        dest="momentum", type=number, help=f"SGD momentum (default {in_words(config_default('momentum'))})"
    ),
    "--batch-size": dict(
        dest="batch_size", type=positive_int, help=f"batch size (reference: {REFERENCE_SCHEDULE['batch_size']})"
    ),
    "--weight-decay": dict(
        dest="weight_decay",
        type=number,
        help=f"weight decay (default {in_words(REFERENCE_SCHEDULE['weight_decay'])}; clothing1m mode {in_words(CLOTHING1M_SCHEDULE['weight_decay'])})",
    ),
    "--val-fraction": dict(
        dest="val_fraction",
        type=number,
        help=f"share of the training set held out as noisy validation (default {in_words(config_default('val_fraction'))})",
    ),
    "--milestones": dict(
        dest="milestones",
        type=milestones,
        help=f"learning-rate milestones in epochs (default {in_words(REFERENCE_SCHEDULE['milestones'])} within each inner round; clothing1m mode {in_words(CLOTHING1M_SCHEDULE['milestones'])} across each outer loop)",
    ),
    "--reference-quirks": dict(
        dest="reference_quirks",
        action="store_const",
        const=True,
        help='reproduce the reference implementation\'s quirks (docs/method.md, "Reference quirks")',
    ),
    "--device": dict(dest="device", choices=DEVICES, help=one_of(DEVICES, config_default("device"))),
    "--threads": dict(
        dest="threads",
        type=positive_int,
        help="CPU threads (default: every available core, 1 for the mlp); results depend on this count, never on the machine's load",
    ),
    "--compile": dict(dest="compile", action="store_const", const=True, help="torch.compile the model (GPU)"),
    "--cuda-graph": dict(
        dest="cuda_graph",
        action="store_const",
        const=True,
        help="record the training step once as a CUDA graph and replay it for every full batch (GPU, one process; exact: the last short batch runs as usual)",
    ),
    "--track-difficulty": dict(
        dest="track_difficulty",
        action="store_const",
        const=True,
        help="with known true labels (synthetic noise): record when the first-phase network settles on each example's true label (one prediction pass per first-phase epoch) and report the confident set's recall per difficulty quintile in summary.json",
    ),
    "--out": dict(
        dest="out", metavar="DIR", help="run directory (default runs/<dataset>-<noise>-<rate>-seed<seed>-<method>)"
    ),
}
# Options of image-file datasets (clothing1m, image folders), shared by `run` and `prepare`.
IMAGE_OPTIONS: dict[str, dict[str, Any]] = {
    "--image-size": dict(
        dest="image_size",
        type=positive_int,
        metavar="PIXELS",
        help="side images are resized to when packed (default 256, as Clothing1M's protocol)",
    ),
    "--cache-dir": dict(
        dest="cache_dir",
        metavar="DIR",
        help="where the packed images go (default: DATA/.memomentum-cache if writable, else ~/.cache/memomentum)",
    ),
    "--store-format": dict(
        dest="store_format",
        choices=STORE_FORMATS,
        help=one_of(
            STORE_FORMATS,
            config_default("store_format"),
            {"jpeg": "re-encoded, ~8x smaller", "raw": "uint8, no decoding"},
        ),
    ),
    "--workers": dict(
        dest="workers",
        type=int,
        metavar="N",
        help="processes that pack and read images (default: one per core, at most 16; 0 reads in the main process)",
    ),
    "--train-set": dict(
        dest="train_set",
        choices=TRAIN_SETS,
        help="clothing1m: "
        + one_of(
            TRAIN_SETS,
            config_default("train_set"),
            {"noisy": "1M images with noisy labels", "clean": "47,570"},
            joiner=", ",
        ),
    ),
}
RUN_IMAGE_OPTIONS: dict[str, dict[str, Any]] = {
    "--pretrained": dict(
        dest="pretrained",
        metavar="PATH|none",
        help="ImageNet weights in torchvision's format (default: looked for in $TORCH_HOME/hub/checkpoints); none trains from scratch",
    ),
    "--stream": dict(
        dest="stream",
        action="store_const",
        const=True,
        help="read images from disk in batches even if they fit in memory",
    ),
    "--no-stream": dict(
        dest="stream",
        action="store_const",
        const=False,
        help="hold the decoded images in memory even if they are large",
    ),
}


def add_parser(sub) -> Parser:
    p = sub.add_parser("run", help="train with Me-Momentum (or the CE baseline) and write a run directory")
    for flag, kw in RUN_OPTIONS.items():
        p.add_argument(flag, default=None, **kw)
    images = p.add_argument_group("image files (clothing1m, image folders)")
    for flag, kw in {**IMAGE_OPTIONS, **RUN_IMAGE_OPTIONS}.items():
        images.add_argument(flag, default=None, **kw)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def run_config(args: argparse.Namespace) -> tuple[RunConfig, bool]:
    """The configuration ``memomentum run``'s options give, and whether it resumes a run (with
    ``--resume``: the run directory's settings, overridden by the options given)."""
    options = {**RUN_OPTIONS, **IMAGE_OPTIONS, **RUN_IMAGE_OPTIONS}.values()
    given = {kw["dest"]: getattr(args, kw["dest"]) for kw in options if getattr(args, kw["dest"]) is not None}
    if args.quiet:
        given["progress"] = False
    if args.resume:
        from ..runner.outputs import read_checkpoint
        from ..runner.rundir import check_run_dir

        if "out" in given and Path(given.pop("out")) != Path(args.resume):
            raise InputError("--resume names the run directory; do not pass --out as well")
        check_run_dir(Path(args.resume), resume=True, overwrite=args.overwrite)
        base = RunConfig.from_dict(read_checkpoint(Path(args.resume))["config"])
        return dataclasses.replace(base, **given, out=args.resume), True
    return RunConfig(**given), False


def print_summary(summary: dict, run_dir) -> None:
    """A finished run's summary in a few lines (``--json`` prints summary.json instead)."""

    def pct(v):
        return "n/a" if v is None else f"{v:.2f}%"

    if summary["noise_type"] == "none":
        noise = "labels as given"
    else:
        rate = "" if summary.get("noise_rate") is None else f" {summary['noise_rate']:g}"
        noise = f"{summary['noise_type']} noise{rate} (realised {summary['realised_noise_rate']:.2f}%)"
    lines = [
        f"{summary['method']} on {summary['dataset']} ({summary['model']}), {noise}, seed {summary['seed']}",
        f"  test accuracy        {pct(summary['test_accuracy'])}  (at best {'clean' if summary.get('mode') == 'clothing1m' else 'noisy'}-validation accuracy {pct(summary['best_val_accuracy'])})",
    ]
    fc = summary["final_confident"]
    line = f"  confident examples   {fc['n_confident']} of {summary['n_train']}"
    if "label_precision" in fc:
        line += f", label precision {fc['label_precision']:.2f}% (noisy labels: {summary['noisy_label_precision']:.2f}%), recall {fc['label_recall']:.2f}%"
        if "n_known_labels" in summary:  # real noise: measured where the true label is known
            line += f" (on the {summary['n_known_labels']} training examples with a known true label)"
    lines.append(line)
    if summary.get("difficulty"):  # --track-difficulty: the final set's recall per difficulty quintile
        final = summary["difficulty"]["rounds"][-1]["recall"]
        lines.append(
            "  recall by difficulty  "
            + " / ".join("n/a" if v is None else f"{v:.1f}%" for v in final)
            + "  (quintiles of the correctly labelled examples, Q1 easiest to Q5 hardest)"
        )
    if summary.get("review"):  # trained on data exported by memomentum review
        r = summary["review"]
        lines.append(
            f"  reviewed data        {counted(r['corrected'], 'label')} corrected, "
            f"{counted(r['excluded'], 'example')} excluded by review ({r['corrections_file']})"
        )
    lines.append(f"  {summary['epochs_run']} epochs in {summary['wall_time_s']:.1f} s on {summary['device']}")
    if run_dir is not None:
        report = f", {files.REPORT}" if (Path(run_dir) / files.REPORT).exists() else ""
        lines.append(f"  results in {run_dir}/ (summary.json, examples.csv, history.csv, model.pt{report})")
    print("\n".join(lines))


def command(args) -> int:
    from ..entrypoints.api import Interrupted, run
    from ..runner.rundir import resume_command
    from ..training import distributed

    cfg, resume = run_config(args)
    main_process = distributed.is_main_process()  # under torchrun, rank 0 alone reports
    try:
        result = run(cfg, resume=resume, overwrite=args.overwrite)
    except Interrupted as e:
        code = 130 if e.signum == signal.SIGINT else 143
        if main_process:
            print(
                f"memomentum: interrupted by {signal.Signals(e.signum).name}; checkpoint saved. "
                f"Resume with: {resume_command(e.run_dir)}",
                file=sys.stderr,
            )
        return code
    except Exception as e:
        if distributed.environment() is None or not distributed.is_peer_failure(e):
            raise
        from ..entrypoints.api import default_run_dir

        print(
            f"memomentum: error: {distributed.lost_message(e)}; the last checkpoint is kept: resume with "
            f"torchrun ... {resume_command(Path(cfg.out) if cfg.out else default_run_dir(cfg))}",
            file=sys.stderr,
        )
        return 1
    if not main_process:
        return 0
    if args.json:
        print(json.dumps(result.summary, indent=2))
    else:
        print_summary(result.summary, result.run_dir)
    return 0


def standalone_parser() -> Parser:
    """``memomentum run``'s parser as :func:`memomentum.cli.build_parser` makes it (its name,
    its refusals), without the other commands: the grid reads each cell's options with it."""
    _, sub = top_parser()
    return add_parser(sub)

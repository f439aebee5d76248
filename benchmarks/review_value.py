"""What a review of the suspects is worth: the review order's precision at k, and the test
accuracy after a simulated reviewer corrects the first k examples, for four orders.

Prints (and checkpoints to ``--out``) one JSON object. Per setting (a dataset and synthetic
noise, drawn once from ``--noise-seed``, so every run below sees the same noisy labels):

- orders of the whole training set, most suspect first:
  ``single``: one Me-Momentum run (training seed 1), its ``examples.csv`` by ``label_quality``
  (the 10 % it held out for validation have no verdict: they come last);
  ``consensus``: ``memomentum consensus`` of ``--seeds`` runs (training seeds 1..N), in its
  review order (``issue_share`` down, then ``mean_label_quality`` up);
  ``cleanlab``: ``cleanlab.filter.find_label_issues(labels, pred_probs,
  return_indices_ranked_by="self_confidence")`` on ``--folds``-fold cross-validated
  probabilities of the same network (each fold's network trained by the cross-entropy baseline,
  ``method="ce"``, with the run's schedule and early stopping on a noisy 10 % of its training
  folds, as ``benchmarks/vs_cleanlab.py`` does), then the examples it does not flag by the same
  score; ``random``: a random permutation (one per training seed);
- ``precision_at_k``: the share of the first k examples whose given label is truly wrong;
- ``retrained``: the first k examples' labels set to their true labels (the reviewer), then
  Me-Momentum trained again on the corrected labels, taken as given, for ``--retrain-seeds``
  training seeds; test accuracy mean ± std per order and k, beside no review (the runs on the
  uncorrected labels: the consensus runs of the same seeds) and the difference to random.

    python benchmarks/review_value.py --settings digits-symmetric-0.2 --out r.json   # one setting
    python benchmarks/review_value.py --quick      # tiny schedule and k (checks the script)

Runs write their directories under ``--work`` and are reused when found finished (and resumed
when found unfinished), and the JSON is rewritten after every measured cell: a stopped
benchmark started again goes on where it stopped. Every run has ``--threads`` threads (1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import memomentum  # noqa: F401  (before torch: the CPU wait policy)
from memomentum.config import RunConfig
from memomentum.entrypoints.api import run
from memomentum.entrypoints.consensus import consensus_table
from memomentum.runner import files
from memomentum.runner.outputs import write_json
from memomentum.runner.prepare import prepare_data

SHORT_FMNIST = dict(epochs=20, max_outer_loop=1, max_inner_loop=4)  # the README's shortened schedule
SETTINGS = {
    "digits-symmetric-0.2": dict(dataset="digits", noise_type="symmetric", noise_rate=0.2, ks=(50, 100, 200)),
    "digits-pairflip-0.45": dict(dataset="digits", noise_type="pairflip", noise_rate=0.45, ks=(50, 100, 200)),
    "digits-instance-0.4": dict(dataset="digits", noise_type="instance", noise_rate=0.4, ks=(50, 100, 200)),
    "fashion-mnist-instance-0.4": dict(
        dataset="fashion-mnist", noise_type="instance", noise_rate=0.4, ks=(100, 500, 2000), schedule=SHORT_FMNIST
    ),
}
QUICK = dict(epochs=2, max_outer_loop=1, max_inner_loop=2)
ORDERS = ("single", "consensus", "cleanlab", "random")


@dataclasses.dataclass
class Setting:
    name: str
    cfg: RunConfig  # seed 1; the noise from noise_seed
    ks: tuple[int, ...]
    work: Path
    data: object  # the dataset (memomentum.data.Dataset), loaded once
    noisy: np.ndarray
    true: np.ndarray

    def config(self, seed: int, **changes) -> RunConfig:
        return dataclasses.replace(self.cfg, seed=seed, **changes)


def make_setting(name: str, args) -> Setting:
    spec = SETTINGS[name]
    schedule = QUICK if args.quick else spec.get("schedule", {})
    cfg = RunConfig(
        dataset=spec["dataset"],
        noise_type=spec["noise_type"],
        noise_rate=spec["noise_rate"],
        noise_seed=args.noise_seed,
        seed=1,
        threads=args.threads,
        device="cpu",
        progress=False,
        **schedule,
    )
    prep = prepare_data(cfg)
    ks = (5, 10) if args.quick else spec["ks"]
    return Setting(
        name,
        cfg,
        ks,
        Path(args.work) / name,
        prep.dataset,
        prep.noisy_labels,
        np.asarray(prep.dataset.y_train, dtype=np.int64),
    )


def finished_run(cfg: RunConfig, out: Path, dataset=None) -> dict:
    """The summary of the run in ``out``: read when finished, else trained (resumed when unfinished)."""
    if (out / files.SUMMARY).is_file():
        return json.loads((out / files.SUMMARY).read_text())
    cfg = dataclasses.replace(cfg, out=str(out))
    resume = (out / files.CHECKPOINT).is_file()
    t0 = time.perf_counter()
    result = run(cfg, resume=resume, overwrite=not resume and out.exists(), dataset=dataset)
    print(
        f"review_value: {out}: test {result.summary['test_accuracy']} in {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return result.summary


# -- the orders ------------------------------------------------------------------------------


def memomentum_runs(s: Setting, seeds: int) -> list[Path]:
    dirs = [s.work / f"memomentum-seed{seed}" for seed in range(1, seeds + 1)]
    for seed, d in enumerate(dirs, 1):
        finished_run(s.config(seed), d)
    return dirs


def single_order(run_dir: Path, n: int) -> np.ndarray:
    """One run's review order: examples.csv by label_quality (ties by index), then the examples
    it held out (no verdict), by index."""
    table = consensus_table([run_dir])  # one run: issue share 0/1, then its label quality, as the review app
    rest = np.setdiff1d(np.arange(n), table["index"])
    return np.concatenate([table["index"], rest])


def consensus_order(run_dirs: list[Path], n: int) -> np.ndarray:
    table = consensus_table(run_dirs)
    return np.concatenate([table["index"], np.setdiff1d(np.arange(n), table["index"])])


def cross_validated_probabilities(s: Setting, folds: int) -> np.ndarray:
    """``folds``-fold cross-validated probabilities of the network trained by the CE baseline
    (each fold's probabilities kept in the work folder: a stopped benchmark keeps them)."""
    from sklearn.model_selection import StratifiedKFold

    from memomentum.training.sources import to_device_data

    ds = s.data
    probs = np.zeros((s.noisy.size, ds.num_classes), dtype=np.float32)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=s.cfg.noise_seed)
    for k, (fit, held) in enumerate(splitter.split(np.zeros(s.noisy.size), s.noisy)):
        saved = s.work / f"cleanlab-fold{k + 1}.npy"
        if saved.is_file():
            probs[held] = np.load(saved)
            continue
        # the other folds with their noisy labels, taken as given; no test set (not scored)
        part = dataclasses.replace(
            ds, x_train=ds.x_train[fit], y_train=s.noisy[fit], labels_are_clean=False, x_test=None, y_test=None
        )
        cfg = s.config(1, method="ce", noise_type="none", noise_rate=None, noise_seed=None)
        t0 = time.perf_counter()
        result = run(cfg, write=False, dataset=part)
        proc = result.procedure
        model = proc.best_model()
        x = to_device_data(
            ds.x_train[held],
            mean=ds.mean,
            std=ds.std,
            device=proc.engine.device,
            channels_last=proc.engine.channels_last,
        )
        probs[held] = proc.engine.predict_proba(model, model, x).cpu().numpy()
        s.work.mkdir(parents=True, exist_ok=True)
        np.save(saved, probs[held])
        print(
            f"review_value: {s.name} cleanlab fold {k + 1}/{folds} in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    return probs


def cleanlab_order(s: Setting, probs: np.ndarray) -> np.ndarray:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    flagged = np.asarray(
        find_label_issues(labels=s.noisy, pred_probs=probs, return_indices_ranked_by="self_confidence"), dtype=np.int64
    )
    scores = get_label_quality_scores(s.noisy, probs, method="self_confidence")
    rest = np.setdiff1d(np.arange(s.noisy.size), flagged)
    return np.concatenate([flagged, rest[np.argsort(scores[rest], kind="stable")]])


def random_order(n: int, seed: int) -> np.ndarray:
    return np.random.RandomState(10_000 + seed).permutation(n)


# -- measures ------------------------------------------------------------------------------


def precision_at(order: np.ndarray, wrong: np.ndarray, k: int) -> float:
    return round(float(np.mean(wrong[order[:k]])), 4)


def mean_std(values: list[float]) -> dict:
    return {
        "mean": round(statistics.fmean(values), 2),
        "std": round(statistics.stdev(values), 2) if len(values) > 1 else None,
        "n": len(values),
        "values": values,
    }


def retrained_accuracy(s: Setting, order: np.ndarray, name: str, k: int, seed: int) -> float:
    """Me-Momentum's test accuracy after the first ``k`` of ``order`` (named ``name``) get their
    true labels: the corrected labels taken as given, training seed ``seed``."""
    labels = s.noisy.copy()
    labels[order[:k]] = s.true[order[:k]]
    corrected = dataclasses.replace(s.data, y_train=labels, labels_are_clean=False)
    cfg = s.config(seed, noise_type="none", noise_rate=None, noise_seed=None)
    return finished_run(cfg, s.work / "retrained" / f"{name}-k{k}-seed{seed}", dataset=corrected)["test_accuracy"]


# -- the benchmark -------------------------------------------------------------------------


def measure_setting(name: str, args, report: dict, save) -> None:
    s = make_setting(name, args)
    wrong = s.noisy != s.true
    entry = report["settings"].setdefault(name, {})
    entry.update(
        {
            "dataset": s.cfg.dataset,
            "noise_type": s.cfg.noise_type,
            "noise_rate": s.cfg.noise_rate,
            "noise_seed": s.cfg.noise_seed,
            "n_train": int(s.noisy.size),
            "n_mislabelled": int(wrong.sum()),
            "realised_noise_rate": round(float(wrong.mean()), 4),
            "ks": list(s.ks),
            "schedule": {k: getattr(s.cfg, k) for k in ("epochs", "max_outer_loop", "max_inner_loop")},
        }
    )
    t0 = time.perf_counter()
    runs = memomentum_runs(s, args.seeds if "consensus" in args.orders else 1)
    orders = {"single": single_order(runs[0], s.noisy.size)}
    if "consensus" in args.orders:
        orders["consensus"] = consensus_order(runs, s.noisy.size)
    if "cleanlab" in args.orders:
        orders["cleanlab"] = cleanlab_order(s, cross_validated_probabilities(s, args.folds))
    randoms = [random_order(s.noisy.size, seed) for seed in range(1, args.retrain_seeds + 1)]
    entry["precision_at_k"] = {o: {str(k): precision_at(order, wrong, k) for k in s.ks} for o, order in orders.items()}
    entry["precision_at_k"]["random"] = {
        str(k): round(float(np.mean([precision_at(r, wrong, k) for r in randoms])), 4) for k in s.ks
    }
    entry["orders_s"] = round(time.perf_counter() - t0, 1)
    save()
    if "retrain" in args.parts and set(args.orders) == set(ORDERS):
        retrain(s, runs, orders, randoms, entry, args, save)


def retrain(s: Setting, runs: list[Path], orders: dict, randoms: list, entry: dict, args, save) -> None:
    seeds = range(1, args.retrain_seeds + 1)
    if len(runs) < args.retrain_seeds:
        runs = memomentum_runs(s, args.retrain_seeds)
    # no review: the Me-Momentum runs on the uncorrected labels, the same seeds
    base = [json.loads((runs[seed - 1] / files.SUMMARY).read_text())["test_accuracy"] for seed in seeds]
    out = entry.setdefault("retrained", {"no_review": mean_std(base)})
    for k in s.ks:
        cell = out.setdefault(str(k), {})
        for name in ORDERS:
            if name in cell:
                continue
            accuracies = [
                retrained_accuracy(s, randoms[seed - 1] if name == "random" else orders[name], name, k, seed)
                for seed in seeds
            ]
            cell[name] = mean_std(accuracies)
            cell[name]["gain_vs_no_review"] = round(cell[name]["mean"] - out["no_review"]["mean"], 2)
            save()
        for name in ORDERS[:3]:  # the same k, the same seeds, the order chosen at random
            cell[name]["minus_random"] = round(cell[name]["mean"] - cell["random"]["mean"], 2)
        save()


# -- the tables of docs/review-value.md -------------------------------------------------------


def markdown(report: dict) -> str:
    """Precision at k, then the retrained test accuracy, one row per setting and k."""
    lines = ["| setting | k | single run | consensus | cleanlab (CV) | random |", "|---|---|---|---|---|---|"]
    for name, entry in report["settings"].items():
        p = entry.get("precision_at_k", {})
        for k in map(str, entry["ks"]):
            cells = [f"{100 * p[o][k]:.1f}" if o in p else "-" for o in ORDERS]
            lines.append(f"| {name} | {k} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| setting | k | no review | single run | consensus | cleanlab (CV) | random |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in report["settings"].items():
        r = entry.get("retrained")
        if not r:
            continue
        base = _pm(r["no_review"])
        for k in map(str, entry["ks"]):
            cell = r.get(k, {})
            lines.append(
                f"| {name} | {k} | {base} | " + " | ".join(_pm(cell[o]) if o in cell else "-" for o in ORDERS) + " |"
            )
    return "\n".join(lines) + "\n"


def _pm(stats: dict) -> str:
    return f"{stats['mean']:.2f} ± {stats['std']:.2f}" if stats.get("std") is not None else f"{stats['mean']:.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=[n for n in SETTINGS if "digits" in n])
    p.add_argument("--parts", nargs="+", choices=("precision", "retrain"), default=["precision", "retrain"])
    p.add_argument("--seeds", type=int, default=5, help="training seeds of the consensus (default 5)")
    p.add_argument("--retrain-seeds", type=int, default=3, help="training seeds per retrained cell (default 3)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds for cleanlab (default 5)")
    p.add_argument("--noise-seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--orders",
        nargs="+",
        choices=ORDERS,
        default=list(ORDERS),
        help="the orders measured (the single run's and random always are; retraining needs all four)",
    )
    p.add_argument("--quick", action="store_true", help="tiny schedule and k: checks the script")
    p.add_argument("--work", default="runs/review-value", help="the runs' directories (reused when finished)")
    p.add_argument("--out", default=None, help="the JSON, rewritten after every measured cell (and read back)")
    p.add_argument("--markdown", metavar="JSON", help="print the tables of a result file as Markdown, and stop")
    args = p.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())), end="")
        return 0

    import cleanlab
    import torch

    report = json.loads(Path(args.out).read_text()) if args.out and Path(args.out).is_file() else {}
    report.update(
        {
            "command": " ".join(["python benchmarks/review_value.py", *(sys.argv[1:] if argv is None else argv)]),
            "device": "cpu",
            "threads": args.threads,
            "torch": torch.__version__,
            "cleanlab": cleanlab.__version__,
            "consensus_seeds": args.seeds,
            "retrain_seeds": args.retrain_seeds,
            "folds": args.folds,
        }
    )
    report.setdefault("settings", {})

    def save():
        if args.out:
            write_json(Path(args.out), report)

    for name in args.settings:
        measure_setting(name, args, report, save)
    save()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

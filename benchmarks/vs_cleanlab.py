"""Me-Momentum's suspect set against cleanlab's ``find_label_issues`` at finding the
mislabelled examples (Fashion-MNIST, instance-dependent noise 0.4, seed 1, LeNet).

Prints one JSON object: for each side, precision, recall and F1 at finding the mislabelled
examples (flagged and truly mislabelled / flagged; / truly mislabelled), the kept set's label
precision and recall (kept = not flagged: share of kept examples whose label is right; share
of the correctly labelled examples that are kept), the number flagged, and the wall time.

    python benchmarks/vs_cleanlab.py                      # the full comparison (60,000 images)
    python benchmarks/vs_cleanlab.py --quick              # tiny subset and schedule (the smoke test)
    python benchmarks/vs_cleanlab.py --track-difficulty   # also the per-quintile recall of the run

Both sides judge the same N examples (the whole training set, or its first ``--n-train``)
with the same noisy labels: the instance-dependent noise ``memomentum run --dataset
fashion-mnist --noise-type instance --noise-rate 0.4 --seed 1`` makes.

- ``memomentum``: one Me-Momentum run, the Fashion-MNIST schedule of docs/results.md (``--epochs 20
  --max-outer-loop 1 --max-inner-loop 4``: a first phase of at most 20 epochs with early
  stopping, then at most 3 inner rounds of 20 epochs; LeNet, SGD lr 0.01, batch 128), through
  ``memomentum.entrypoints.api.run`` as ``memomentum run`` trains it (the 90/10 split, validation on the
  noisy labels of the 10 %). Flagged: the examples outside the final confident set, and on
  the held-out 10 % those the best network disagrees with (the rule of
  :func:`memomentum.find_label_issues`). Timed: the run plus that last prediction pass (with
  ``--track-difficulty`` the difficulty passes are timed apart and left out of the wall time
  compared).
- ``cleanlab``: ``cleanlab.filter.find_label_issues(labels, pred_probs)`` with its defaults
  (``filter_by="prune_by_noise_rate"``) on 5-fold cross-validated ``pred_probs`` (stratified
  folds from the seed): each fold's network is the same LeNet trained with memomentum's engine
  by the cross-entropy baseline (``method="ce"``) with the same epochs, 20, and the same early
  stopping on a 10 % noisy validation split of its four training folds, as docs/results.md's CE
  row; it then predicts its held-out fold. Timed: the five trainings, the predictions and
  cleanlab's call.

Results are deterministic on the CPU for a given seed and thread count; wall times depend on
the machine's load, so each side also reports the process's CPU time (all its threads; with
the difficulty passes, when tracked) and the load average before and after it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import memomentum  # noqa: F401  (before torch: the CPU wait policy)

# isort: split
import numpy as np
import torch

from memomentum.config import RunConfig
from memomentum.data import load_dataset
from memomentum.entrypoints.api import run, verdicts_of_run
from memomentum.runner.prepare import prepare_data
from memomentum.training.sources import to_device_data

FULL = dict(epochs=20, max_outer_loop=1, max_inner_loop=4)
QUICK = dict(epochs=2, max_outer_loop=1, max_inner_loop=2)
QUICK_N_TRAIN = 1500


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def scores(flagged: np.ndarray, mislabelled: np.ndarray) -> dict:
    """Precision / recall / F1 at finding the mislabelled examples, and the kept set's label
    precision / recall, all in [0, 1]."""
    hits = int(np.sum(flagged & mislabelled))
    precision = hits / max(int(flagged.sum()), 1)
    recall = hits / max(int(mislabelled.sum()), 1)
    kept, correct = ~flagged, ~mislabelled
    return {
        "n_flagged": int(flagged.sum()),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / max(precision + recall, 1e-12), 4),
        "kept": int(kept.sum()),
        "kept_label_precision": round(int(np.sum(kept & correct)) / max(int(kept.sum()), 1), 4),
        "kept_label_recall": round(int(np.sum(kept & correct)) / max(int(correct.sum()), 1), 4),
    }


def memomentum_side(ds, cfg: RunConfig, noisy: np.ndarray, true: np.ndarray, prep) -> dict:
    load_before, cpu0 = load_average(), time.process_time()
    t0 = time.perf_counter()
    result = run(cfg, write=False, dataset=ds)
    verdict = verdicts_of_run(result)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    s = result.summary
    difficulty_s = s["time_s"].get("difficulty", 0.0)
    out = {
        "wall_time_s": round(wall - difficulty_s, 2),
        "cpu_time_s": round(cpu, 2),
        "load_average": {"before": load_before, "after": load_average()},
        **scores(verdict["is_label_issue"], noisy != true),
        "epochs_run": s["epochs_run"],
        "time_s": s["time_s"],
        "training_part_only": s["final_confident"],
        "rounds": s["rounds"],
    }
    if difficulty_s:
        out["wall_time_with_difficulty_passes_s"] = round(wall, 2)
        out["difficulty"] = s["difficulty"]
    # the quality ranking: of the flagged examples, are the lowest-quality ones the mislabelled?
    ranked = np.argsort(verdict["label_quality"], kind="stable")
    k = int(verdict["is_label_issue"].sum())
    out["precision_of_lowest_quality_half_of_flagged"] = (
        round(float(np.mean((noisy != true)[ranked[: k // 2]])), 4) if k > 1 else None
    )
    return out


def cleanlab_side(ds, cfg: RunConfig, noisy: np.ndarray, true: np.ndarray, folds: int) -> dict:
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import StratifiedKFold

    load_before, cpu0 = load_average(), time.process_time()
    t0 = time.perf_counter()
    n = noisy.size
    pred_probs = np.zeros((n, ds.num_classes), dtype=np.float32)
    fold_records = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=cfg.seed)
    for k, (fit_rows, held_rows) in enumerate(splitter.split(np.zeros(n), noisy)):
        # the four training folds with their noisy labels, taken as given ("none": no more noise)
        part = dataclasses.replace(ds, x_train=ds.x_train[fit_rows], y_train=noisy[fit_rows], labels_are_clean=False)
        fold_cfg = dataclasses.replace(cfg, method="ce", noise_type="none", noise_rate=None, track_difficulty=False)
        result = run(fold_cfg, write=False, dataset=part)
        proc = result.procedure
        model = proc.best_model()
        held = to_device_data(
            ds.x_train[held_rows],
            mean=ds.mean,
            std=ds.std,
            device=proc.engine.device,
            channels_last=proc.engine.channels_last,
        )
        pred_probs[held_rows] = proc.engine.predict_proba(model, model, held).cpu().numpy()
        fold_records.append(
            {
                "fold": k + 1,
                "n_fit": int(fit_rows.size),
                "epochs_run": result.summary["epochs_run"],
                "best_val_accuracy": result.summary["best_val_accuracy"],
            }
        )
        print(
            f"vs_cleanlab: fold {k + 1}/{folds}: {result.summary['epochs_run']} epochs, "
            f"{time.perf_counter() - t0:.0f} s so far",
            file=sys.stderr,
        )
    t1 = time.perf_counter()
    flagged = find_label_issues(labels=noisy, pred_probs=pred_probs)
    find_s = time.perf_counter() - t1
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "wall_time_s": round(wall, 2),
        "cpu_time_s": round(cpu, 2),
        "load_average": {"before": load_before, "after": load_average()},
        **scores(np.asarray(flagged, dtype=bool), noisy != true),
        "find_label_issues_s": round(find_s, 2),
        "folds": fold_records,
        "cross_validated_accuracy_on_noisy_labels": round(float(np.mean(pred_probs.argmax(1) == noisy)), 4),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--noise-rate", type=float, default=0.4)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST's idx files (default: Debian's package)")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"tiny schedule on the first {QUICK_N_TRAIN} training images: checks the script",
    )
    p.add_argument("--n-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: every available core)")
    p.add_argument(
        "--track-difficulty",
        action="store_true",
        help="the Me-Momentum run also records difficulty (its passes are timed apart)",
    )
    p.add_argument("--only", choices=("memomentum", "cleanlab"), default=None, help="run one side only")
    args = p.parse_args(argv)

    t_start = time.perf_counter()
    load_start = load_average()
    full = load_dataset("fashion-mnist", data_dir=args.data_dir)
    n_train = args.n_train if args.n_train is not None else (QUICK_N_TRAIN if args.quick else None)
    # no test set: both sides judge the training examples only (and neither spends time testing)
    ds = dataclasses.replace(
        full, x_train=full.x_train[:n_train], y_train=full.y_train[:n_train], x_test=None, y_test=None
    )
    cfg = RunConfig(
        dataset="fashion-mnist",
        noise_type="instance",
        noise_rate=args.noise_rate,
        seed=args.seed,
        model="lenet",
        device="cpu",
        threads=args.threads,
        progress=False,
        track_difficulty=args.track_difficulty,
        **(QUICK if args.quick else FULL),
    )
    prep = prepare_data(cfg, ds)  # the noisy labels and split the run makes (deterministic from the seed)
    noisy, true = prep.noisy_labels, np.asarray(ds.y_train, dtype=np.int64)
    sides = {}
    if args.only in (None, "memomentum"):
        sides["memomentum"] = memomentum_side(ds, cfg, noisy, true, prep)
        print(
            f"vs_cleanlab: memomentum F1 {sides['memomentum']['f1']} in {sides['memomentum']['wall_time_s']} s",
            file=sys.stderr,
        )
    if args.only in (None, "cleanlab"):
        sides["cleanlab"] = cleanlab_side(ds, cfg, noisy, true, args.folds)
        print(
            f"vs_cleanlab: cleanlab F1 {sides['cleanlab']['f1']} in {sides['cleanlab']['wall_time_s']} s",
            file=sys.stderr,
        )
    import cleanlab

    report = {
        "command": " ".join(["python benchmarks/vs_cleanlab.py", *(sys.argv[1:] if argv is None else argv)]),
        "dataset": "fashion-mnist",
        "quick": args.quick,
        "n_examples": int(noisy.size),
        "n_mislabelled": int(np.sum(noisy != true)),
        "realised_noise_rate": round(float(np.mean(noisy != true)), 4),
        "noise_type": "instance",
        "noise_rate": args.noise_rate,
        "seed": args.seed,
        "model": "lenet",
        "schedule": dict(QUICK if args.quick else FULL),
        "folds": args.folds,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cleanlab": cleanlab.__version__,
        **sides,
        "total_wall_time_s": round(time.perf_counter() - t_start, 2),
        "load_average": {"start": load_start, "end": load_average()},
    }
    if len(sides) == 2:
        m, c = sides["memomentum"], sides["cleanlab"]
        report["memomentum_better_f1"] = m["f1"] > c["f1"]
        report["memomentum_faster"] = m["wall_time_s"] < c["wall_time_s"]
        report["memomentum_less_cpu_time"] = m["cpu_time_s"] < c["cpu_time_s"]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A practitioner's table: the digits as a CSV with string labels and instance noise 0.4.

Writes the embedded 8x8 digits (scikit-learn's copy; the package's 1,437 / 360 split) as
``digits.csv``: 64 pixel columns, a ``label`` column of strings (``digit_0`` ...
``digit_9``) and a ``split`` column (train / test). The training rows' labels carry the
package's instance-dependent noise (rate 0.4, seed 1: the labels ``memomentum run --dataset
digits`` trains on); the test rows keep their true labels. The table is read back with
:func:`memomentum.data.tables.read_table`, as ``--dataset digits.csv`` reads it, and four
classifiers are trained on the noisy string labels and scored on the test rows:

* ``hgb``: ``MeMomentumClassifier(HistGradientBoostingClassifier())`` against the same
  ``HistGradientBoostingClassifier()`` fitted on all noisy training rows;
* ``mlp``: ``MeMomentumClassifier()`` (the default MLP, Me-Momentum) against
  ``MeMomentumClassifier(method="ce")`` (the same MLP and early stopping on the noisy
  labels: the package's cross-entropy baseline).

For the Me-Momentum models it also reports the confident set's label precision and recall
against the true training labels. Prints JSON. Needs the ``tables`` and ``sklearn`` extras.

    python benchmarks/tables_digits.py > tables_digits.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import memomentum  # noqa: F401 -- first, before torch (its CPU wait policy)

# isort: split
import numpy as np

from memomentum.data import load_dataset
from memomentum.data.tables import read_table
from memomentum.noise.labels import make_noisy_labels


def write_digits_csv(path: Path, *, noise_rate: float, seed: int, limit: int | None) -> dict:
    """The digits table with noisy string labels on the training rows; returns the true
    training labels (as strings, in the table's training-row order) and the noise realised."""
    import pandas as pd

    ds = load_dataset("digits")
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if limit is not None:  # a smaller table for quick checks
        x_train, y_train = x_train[:limit], y_train[:limit]
        x_test, y_test = x_test[: max(limit // 4, 20)], y_test[: max(limit // 4, 20)]
    noisy = make_noisy_labels(
        y_train, noise_type="instance", noise_rate=noise_rate, seed=seed, num_classes=10, features=x_train
    )
    name = np.array([f"digit_{k}" for k in range(10)])
    pixels = np.concatenate([x_train, x_test]).reshape(len(x_train) + len(x_test), -1)
    frame = pd.DataFrame(pixels.astype(np.int64), columns=[f"pixel_{i}" for i in range(pixels.shape[1])])
    frame["label"] = np.concatenate([name[noisy.labels], name[y_test]])
    frame["split"] = ["train"] * len(x_train) + ["test"] * len(x_test)
    frame.to_csv(path, index=False)
    return {"true_train": name[y_train], "realised_noise_rate": round(100 * noisy.realised_rate, 2)}


def confident_stats(clf, given: np.ndarray, true: np.ndarray) -> dict:
    """Size, label precision and label recall (percent) of the estimator's confident set."""
    kept = np.asarray(clf.confident_)
    correct = given == true
    return {
        "n_confident": int(kept.sum()),
        "label_precision": round(100 * float(correct[kept].mean()), 2),
        "label_recall": round(100 * float(kept[correct].mean()), 2),
    }


def timed_fit(model, x, y):
    t0 = time.perf_counter()
    model.fit(x, y)
    return model, round(time.perf_counter() - t0, 2)


def main(argv=None) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from memomentum.entrypoints.estimator import MeMomentumClassifier

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--noise-rate", type=float, default=0.4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out-dir", help="where digits.csv is written (default: a temporary directory)")
    p.add_argument("--limit", type=int, help="use only the first N training rows (quick checks)")
    p.add_argument("--hgb-max-iter", type=int, default=100, help="boosting iterations (scikit-learn's default 100)")
    p.add_argument("--epochs", type=int, help="MLP: epochs per phase (default: the package's, 100)")
    p.add_argument("--max-outer-loop", type=int)
    p.add_argument("--max-inner-loop", type=int)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for every model (default 1: the MLP's own default, and stable timings on a shared machine)",
    )
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.out_dir or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        csv = out_dir / "digits.csv"
        made = write_digits_csv(csv, noise_rate=args.noise_rate, seed=args.seed, limit=args.limit)
        table = read_table(csv, label_column="label")
    ds = table.dataset
    names = np.array(ds.class_names)
    x, given = ds.x_train, names[ds.y_train]  # the user's string labels, as they are in the file
    x_test, y_test = ds.x_test, names[ds.y_test]
    true = made["true_train"]
    schedule = {k: getattr(args, k) for k in ("max_outer_loop", "max_inner_loop") if getattr(args, k) is not None}

    def accuracy(model) -> float:
        return round(100 * float(np.mean(model.predict(x_test) == y_test)), 2)

    def hgb():
        return HistGradientBoostingClassifier(max_iter=args.hgb_max_iter, random_state=args.seed)

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads):
        plain, plain_s = timed_fit(hgb(), x, given)
    mm_hgb, mm_hgb_s = timed_fit(
        MeMomentumClassifier(hgb(), random_state=args.seed, threads=args.threads, **schedule), x, given
    )
    net = dict(random_state=args.seed, threads=args.threads, device="cpu", epochs=args.epochs, **schedule)
    mm_mlp, mm_mlp_s = timed_fit(MeMomentumClassifier(**net), x, given)
    ce_mlp, ce_mlp_s = timed_fit(MeMomentumClassifier(method="ce", **net), x, given)
    result = {
        "command": "python " + " ".join(["benchmarks/tables_digits.py", *(argv if argv is not None else sys.argv[1:])]),
        "data": {
            "table": "digits.csv: 64 pixel columns, label (digit_0..digit_9), split (train/test)",
            "n_train": int(x.shape[0]),
            "n_test": int(x_test.shape[0]),
            "feature_columns": len(table.feature_columns),
            "noise": f"instance {args.noise_rate:g}, seed {args.seed}",
            "realised_noise_rate": made["realised_noise_rate"],
            "reader_notes": list(table.notes),
        },
        "hgb": {
            "memomentum_test_accuracy": accuracy(mm_hgb),
            "noisy_fit_test_accuracy": accuracy(plain),
            "memomentum_confident": confident_stats(mm_hgb, given, true),
            "noisy_label_precision": round(100 * float(np.mean(given == true)), 2),
            "fits": mm_hgb.summary_["fits"],
            "rounds": len(mm_hgb.summary_["rounds"]),
            "best_at": mm_hgb.summary_["best_at"],
            "wall_s": {"memomentum": mm_hgb_s, "noisy_fit": plain_s},
        },
        "mlp": {
            "memomentum_test_accuracy": accuracy(mm_mlp),
            "noisy_fit_test_accuracy": accuracy(ce_mlp),
            "memomentum_confident": confident_stats(mm_mlp, given, true),
            "epochs_run": {"memomentum": mm_mlp.summary_["epochs_run"], "ce": ce_mlp.summary_["epochs_run"]},
            "wall_s": {"memomentum": mm_mlp_s, "ce": ce_mlp_s},
        },
        "threads": args.threads,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

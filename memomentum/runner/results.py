"""A finished run's results: the best model's predictions on the training part (one
prediction pass serves the summary, ``examples.csv`` and the callers), ``summary.json``
and the other result files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import RunConfig
from ..data.corrections import read_review_counts
from ..method.procedure import Procedure, not_none
from ..method.verdicts import verdict_columns
from ..training.threads import ThreadPolicy
from . import outputs
from .files import CHECKPOINT, CLASSES, EXAMPLES, MODEL, ROUNDS, SUMMARY
from .prepare import RunData
from .records import RunRecords


@dataclass
class FinalPredictions:
    """The best model on every example of the training part T, from one prediction pass,
    and the final confident set the procedure makes of it."""

    predicted: torch.Tensor  # (|T|,) class numbers
    confidence: torch.Tensor  # (|T|,) the probability of the predicted class
    probabilities: torch.Tensor  # (|T|, K) softmax
    confident_index: torch.Tensor  # indices into T of the final confident set

    def confident_mask(self) -> np.ndarray:
        """The final confident set as a boolean array over T."""
        mask = np.zeros(self.predicted.numel(), dtype=bool)
        mask[self.confident_index.cpu().numpy()] = True
        return mask


def final_predictions(proc: Procedure) -> FinalPredictions:
    model = proc.best_model()
    probs = proc.engine.predict_proba(model, model, proc.problem.train, num_classes=proc.problem.num_classes)
    conf, pred = probs.max(dim=1)
    return FinalPredictions(pred, conf, probs, proc.confident_index(pred))


def summarise(
    cfg: RunConfig,
    prep: RunData,
    proc: Procedure,
    final: FinalPredictions,
    device: torch.device,
    thread_policy: ThreadPolicy,
    wall: float,
) -> dict:
    """``summary.json``: the settings that name the run, the result, and how it was reached."""
    s = proc.state
    human = bool(cfg.human_labels_path)
    summary = {
        "dataset": cfg.dataset,
        "method": cfg.method,
        "mode": cfg.mode,
        "model": cfg.model,
        "noise_type": "human" if human else cfg.noise_type,
        "noise_rate": None if human else cfg.noise_rate,
        "realised_noise_rate": round(100 * prep.realised_rate, 2),
        "seed": cfg.seed,
        **({} if cfg.noise_seed is None else {"noise_seed": cfg.noise_seed}),
        "reference_quirks": cfg.reference_quirks,
        "test_accuracy": s.run_best_test,
        "best_val_accuracy": s.run_best_val,
        "best_at": s.run_best_where,
        "n_train": int(prep.train_index.size),
        "n_val": int(prep.val_labels.size),
        "epochs_run": len(s.history),
        "wall_time_s": round(wall, 2),
        "time_s": {k: round(v, 2) for k, v in s.timings.items()},
        "device": str(device),
        **thread_policy.to_dict(),
        "rounds": s.rounds,
        "final_confident": proc.confident_stats(final.confident_index),
        **proc.summary_extra(),
    }
    summary.update(_noisy_label_precision(prep))
    review = read_review_counts(cfg.dataset)  # the data came from memomentum review --export
    if review is not None:
        summary["review"] = review
    return summary


def _noisy_label_precision(prep: RunData) -> dict:
    """How many given labels of T are right, where the true labels are known."""
    true = prep.true_train_labels()
    if true is None:
        return {}
    known = true >= 0
    noisy_train = prep.noisy_labels[prep.train_index]
    out = {"noisy_label_precision": round(100 * float(np.mean(noisy_train[known] == true[known])), 2)}
    if not known.all():
        out["n_known_labels"] = int(known.sum())
    return out


def write_results(
    run_dir: Path,
    cfg: RunConfig,
    prep: RunData,
    proc: Procedure,
    final: FinalPredictions,
    summary: dict,
    records: RunRecords,
) -> None:
    """Every result file, ``summary.json`` last (it marks the run finished); then the
    checkpoint goes. ``history.csv`` is complete already: it grew with the checkpoint."""
    names = prep.dataset.class_names
    verdict = verdict_columns(
        given=prep.noisy_labels[prep.train_index],
        predicted=final.predicted.cpu().numpy(),
        probabilities=final.probabilities.cpu().numpy(),
        confident=final.confident_mask(),
        class_names=names,
    )
    outputs.write_examples(
        run_dir / EXAMPLES,
        index=prep.train_index,
        verdict=verdict,
        true=prep.true_train_labels(),
        files=prep.dataset.train_files,
        rows=prep.dataset.train_rows,
        class_names=names,
    )
    records.write_rounds(run_dir / ROUNDS, index=prep.train_index)
    if names is not None:
        outputs.write_json(run_dir / CLASSES, list(names))
    outputs.write_torch(run_dir / MODEL, _model_file(cfg, prep, proc))
    outputs.write_json(run_dir / SUMMARY, summary)
    (run_dir / CHECKPOINT).unlink(missing_ok=True)


def _model_file(cfg: RunConfig, prep: RunData, proc: Procedure) -> dict:
    """``model.pt``: the best weights and what it takes to use them on new data (the
    network's name and input, the normalisation; a table's feature columns by name)."""
    ds, problem = prep.dataset, proc.problem
    saved: dict[str, Any] = {
        "model": cfg.model,
        "num_classes": problem.num_classes,
        "input_shape": list(problem.input_shape),
        "mean": list(ds.mean),
        "std": list(ds.std),
        "state_dict": {k: v.cpu() for k, v in not_none(proc.best_weights()).items()},
    }
    if ds.feature_names is not None:
        saved["feature_columns"] = list(ds.feature_names)
    return saved

"""The Me-Momentum state machine: early stopping, inner rounds, test-accuracy bookkeeping,
and exact continuation from a saved state."""

import io

import numpy as np
import pytest
import torch
from helpers import gaussian_blobs, run_tensors

from memomentum.config import RunConfig
from memomentum.method.procedure import Procedure
from memomentum.training.engine import Engine


def blob_problem(n=120, noise=0.3, seed=0):
    """Three Gaussian blobs with some labels flipped; clean labels known."""
    x, clean, noisy = gaussian_blobs(n, 3, 4, separation=3, noise=noise, seed=seed)
    tr, va = slice(0, 90), slice(90, n)
    return run_tensors(
        x,
        noisy,
        clean,
        split=(tr, va, va),
        num_classes=3,
        input_shape=(4,),
        noisy_validation=True,
        mean=np.zeros(4),
        std=np.ones(4),
    )


def make(cfg_kwargs, problem=None, **kw):
    cfg = RunConfig(model="mlp", batch_size=16, lr=0.05, **cfg_kwargs).resolved("mlp")
    eng = Engine(device=torch.device("cpu"), augment="none", batch_size=cfg.batch_size, predict_chunk=64)
    return Procedure(config=cfg, problem=problem or blob_problem(), engine=eng, **kw)


def scripted(proc, values):
    """Replace the validation metric by a script, so the schedule logic can be checked exactly."""
    it = iter(values)
    proc._validate = lambda: next(it)
    return proc


def run_scripted(values, **cfg):
    proc = scripted(make(dict(epochs=25, max_outer_loop=1, max_inner_loop=4, **cfg)), values)
    proc.run()
    return proc.state


def test_first_phase_stops_twenty_epochs_after_its_best_and_rounds_stop_without_gain():
    values = [50, 60] + [59] * 20  # first phase: stops 20 epochs after the best
    values += [61, 62] + [55] * 23  # round 1 (25 epochs): gain
    values += [63] + [50] * 24  # round 2: gain
    values += [50] * 25  # round 3: no gain -> stop (it is also the last allowed)
    s = run_scripted(values)
    phases = [(h["outer"], h["inner"]) for h in s.history]
    assert phases.count((1, 0)) == 22
    assert [phases.count((1, r)) for r in (1, 2, 3)] == [25, 25, 25]
    assert [r["inner"] for r in s.rounds] == [1, 2, 3]
    assert s.run_best_val == 63
    assert s.run_best_where == {"outer": 1, "inner": 2, "epoch": 1}
    assert s.stage == "done"


def test_inner_loop_stops_at_first_round_without_gain():
    values = [50, 70] + [59] * 20 + [65] + [60] * 24 + [60] * 25
    s = run_scripted(values)
    # round 1 always continues (its b is compared with 0), round 2 has no gain over 70
    assert [r["inner"] for r in s.rounds] == [1, 2]
    assert len(s.history) == 22 + 50


def test_fixed_mode_records_test_accuracy_in_the_first_phase_but_reference_quirk_does_not():
    values = [50, 70] + [59] * 20 + [65] + [60] * 24 + [60] * 25
    fixed = run_scripted(values)
    assert fixed.run_best_val == 70 and fixed.run_best_where["inner"] == 0
    assert fixed.run_best_test is not None
    quirk = run_scripted(values, reference_quirks=True)
    assert quirk.run_best_val == 0 and quirk.run_best_test is None


def test_learning_rate_follows_milestones_in_inner_rounds_only():
    values = [50, 60] + [59] * 20 + [61] * 25 + [50] * 25 + [50] * 25
    s = run_scripted(values, milestones=(3, 5))
    first = [h["lr"] for h in s.history if h["inner"] == 0]
    round1 = [h["lr"] for h in s.history if h["inner"] == 1]
    assert set(first) == {0.05}
    assert round1[:3] == [0.05] * 3 and round1[3:5] == pytest.approx([0.005] * 2) and round1[5] == pytest.approx(0.0005)


def test_confident_set_is_where_prediction_equals_noisy_label():
    proc = make(dict(epochs=5, max_outer_loop=2, max_inner_loop=3))
    predictions, chosen = [], []  # each round's prediction of T, and the set the round trains on
    real_predict, real_start = proc.predict_train, proc._start_inner_round

    def predict_train():
        pred, conf = real_predict()
        predictions.append(pred.clone())
        return pred, conf

    def start_inner_round():
        real_start()
        chosen.append(proc.state.train_index.clone())

    proc.predict_train, proc._start_inner_round = predict_train, start_inner_round
    proc.run()
    s = proc.state
    assert len(s.rounds) >= 2 and {r["outer"] for r in s.rounds} == {1, 2}
    assert len(predictions) == len(chosen) == len(s.rounds)
    noisy, clean = proc.problem.train_labels, proc.problem.clean_train_labels
    for pred, index, r in zip(predictions, chosen, s.rounds):
        expected = torch.nonzero(pred == noisy).flatten()
        assert torch.equal(index, expected)
        correct = noisy == clean
        assert r["n_confident"] == expected.numel() > 0
        assert r["label_precision"] == round(100 * int(correct[expected].sum()) / expected.numel(), 2)
        assert r["label_recall"] == round(100 * int(correct[expected].sum()) / int(correct.sum()), 2)
    # the second outer loop's first phase trains on the last confident set of the first
    first_of_outer2 = next(h for h in s.history if h["outer"] == 2)
    last_round_outer1 = [r for r in s.rounds if r["outer"] == 1][-1]
    assert first_of_outer2["n_train"] == last_round_outer1["n_confident"]


def test_ce_baseline_runs_only_the_first_phase():
    proc = make(dict(method="ce", epochs=8, max_outer_loop=3, max_inner_loop=5))
    proc.run()
    assert {(h["outer"], h["inner"]) for h in proc.state.history} == {(1, 0)}
    assert proc.state.rounds == [] and proc.state.run_best_test is not None


def roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


@pytest.mark.parametrize("pause_at", [3, 17, 40, 61])
def test_paused_and_resumed_run_equals_uninterrupted_run(pause_at):
    cfg = dict(epochs=6, max_outer_loop=2, max_inner_loop=3)
    full = make(cfg)
    full.run()

    steps = {"n": 0}

    def pause():
        steps["n"] += 1
        return steps["n"] == pause_at

    saved = {}
    first = make(cfg, on_checkpoint=lambda p: saved.update(state=roundtrip(p.state_dict())), should_pause=pause)
    first.run()
    assert first.paused
    second = make(cfg)
    second.load_state_dict(saved["state"])
    second.run()
    assert not second.paused
    a, b = full.state, second.state
    assert a.history == b.history
    assert a.rounds == b.rounds
    assert (a.run_best_val, a.run_best_test, a.run_best_where) == (b.run_best_val, b.run_best_test, b.run_best_where)
    for k in a.run_best_weights:
        assert torch.equal(a.run_best_weights[k], b.run_best_weights[k])


def test_the_whole_procedure_runs_with_the_gpu_policy_on_the_cpu():
    """bf16 autocast, fused SGD and torch.compile (a plain backend: no C++ compiler needed),
    as on a GPU, through first phase, inner rounds, checkpoint state and best-model test."""
    torch._dynamo.reset()
    cfg = RunConfig(model="mlp", batch_size=16, lr=0.05, epochs=5, max_outer_loop=1, max_inner_loop=3).resolved("mlp")
    eng = Engine(
        device=torch.device("cpu"),
        augment="none",
        batch_size=16,
        predict_chunk=64,
        compile=True,
        compile_backend="eager",
        precision="bf16",
        fused_optimizer=True,
    )
    proc = Procedure(config=cfg, problem=blob_problem(), engine=eng)
    proc.run()
    s = proc.state
    assert s.stage == "done" and s.rounds
    assert all(r["n_confident"] > 0 for r in s.rounds)
    assert all(np.isfinite(h["train_loss"]) and h["train_loss"] > 0 for h in s.history)
    assert s.run_best_test is not None and s.run_best_test > 75  # three well-separated blobs: 90.0 % measured


class RecordingProgress:
    def __init__(self):
        self.steps, self.epochs, self.stopping = [], [], []

    def steps_done(self, where, done, total, images_per_s):
        self.steps.append((dict(where), done, total, images_per_s))

    def epoch_done(self, row, images_per_s, stopping=None):
        self.epochs.append((dict(row), images_per_s))
        self.stopping.append(stopping)


def test_progress_reports_images_per_second_inside_and_after_every_epoch(monkeypatch):
    import memomentum.method.procedure as procedure_module

    clock = iter(range(10**6))  # every reading of the clock is one second later
    monkeypatch.setattr(procedure_module.time, "perf_counter", lambda: float(next(clock)))
    progress = RecordingProgress()
    proc = make(dict(epochs=2, max_outer_loop=1, max_inner_loop=2), progress=progress)
    proc.run()
    rows = proc.state.history
    assert [row for row, _ in progress.epochs] == rows
    assert all(rate > 0 for _, rate in progress.epochs)
    # 90 examples in batches of 16: 6 steps in a first-phase epoch, each reported with its position
    first = [(done, total) for where, done, total, _ in progress.steps if where == {"outer": 1, "inner": 0, "epoch": 1}]
    assert first == [(16, 90), (32, 90), (48, 90), (64, 90), (80, 90), (90, 90)]
    assert {where["epoch"] for where, *_ in progress.steps} == {1, 2}
    assert all(rate > 0 for *_, rate in progress.steps)


def test_progress_says_where_early_stopping_stands_after_each_first_phase_epoch():
    """The margin grows by margin_step after every epoch without a new best and falls back
    to 0 with one; the phase ends past margin_limit or at its bound; rounds show nothing."""
    progress = RecordingProgress()
    proc = make(
        dict(epochs=4, max_outer_loop=1, max_inner_loop=2, margin_step=0.5, margin_limit=0.9), progress=progress
    )
    proc.run()
    rows = proc.state.history
    best, margin, expected = 0.0, 0.0, []
    for row in rows:
        if row["inner"] != 0:
            expected.append(None)
            continue
        best, margin = (row["val_accuracy"], 0.0) if row["val_accuracy"] > best + margin else (best, margin + 0.5)
        ended = margin > 0.9 or row["epoch"] == 4
        expected.append("first phase ended" if ended else f"margin {margin:.1f}/0.9")
    assert progress.stopping == expected and expected[-1] is None
    assert "margin 0.5/0.9" in expected and "first phase ended" in expected


def test_the_progress_bar_shows_images_per_second(capsys):
    from memomentum.entrypoints import api

    threads = torch.get_num_threads()
    try:
        api.run(RunConfig(epochs=1, max_outer_loop=1, max_inner_loop=1, progress=True), write=False)
    finally:
        torch.set_num_threads(threads)  # the run chose its own thread count
    err = capsys.readouterr().err
    assert "img/s" in err and "outer 1 first phase" in err
    assert "(at most 1 outer loop of a first phase and 0 rounds, 1 epoch each)" in err  # the bounds, counted


def test_the_progress_bar_names_the_protocols_bounds():
    from memomentum.runner.progress import protocol_bounds

    assert protocol_bounds(RunConfig(epochs=20, max_outer_loop=1, max_inner_loop=2)) == (
        "at most 1 outer loop of a first phase and 1 round, 20 epochs each"
    )
    assert protocol_bounds(RunConfig(epochs=100, max_outer_loop=3, max_inner_loop=20)) == (
        "at most 3 outer loops of a first phase and 19 rounds, 100 epochs each"
    )
    assert protocol_bounds(RunConfig(method="ce", epochs=30)) == "one phase of at most 30 epochs"

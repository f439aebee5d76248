"""The Clothing1M mode (``Clothing1MProcedure``) against its specification: hand-computed
scores, class weights and extraction; a plain second implementation of the whole loop (the
oracle) run side by side on the same miniature data; exact pause and resume."""

import io

import numpy as np
import pytest
import torch
from helpers import gaussian_blobs, run_tensors

from memomentum.config import RunConfig
from memomentum.method.clothing1m import Clothing1MProcedure, class_weights, per_class_scores
from memomentum.method.procedure import RunTensors
from memomentum.training.engine import Engine
from memomentum.training.models import create_model
from memomentum.training.sources import to_device_data

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """Fixed threads: the oracle and the procedure must do bit-identical arithmetic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def long(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.long)


# ------------------------------------------------------------------ hand-computed cases
def test_per_class_scores_by_hand():
    labels = long([0, 0, 0, 1, 1, 2, 2, 2])  # class 3 never occurs in the labels
    pred = long([0, 0, 1, 1, 3, 0, 0, 1])  # class 2 is never predicted
    # class 0: support 3, predicted 4 times (0, 1, 5, 6), hits 2 (0, 1)
    #          recall 200/3 %, precision 50 %: 0.45 x 66.667 + 0.55 x 50 = 30 + 27.5 = 57.5
    # class 1: support 2, predicted 3 times (2, 3, 7), hits 1 (3)
    #          recall 50 %, precision 100/3 %: 22.5 + 18.333 = 40.8333 -> 40.83
    #          (the weights swapped would give 0.55 x 50 + 0.45 x 33.33 = 42.5)
    # class 2: support 3, never predicted: recall 0, precision 0 (not NaN) -> 0
    # class 3: absent from the labels, predicted once (4), no hit -> 0
    scores = per_class_scores(pred, labels, 4)
    assert scores == [57.5, 40.83, 0.0, 0.0]
    assert all(isinstance(v, float) and not np.isnan(v) for v in scores)
    # a perfect classifier scores 100 for every class present
    assert per_class_scores(labels, labels, 3) == [100.0, 100.0, 100.0]


def test_class_weights_by_hand():
    # n_train = [1, 2, 3] (mean 2), n_val = [2, 1, 1] (mean 4/3)
    # w0 = 2/1 x 2/(4/3) = 3, w1 = 2/2 x 1/(4/3) = 0.75, w2 = 2/3 x 0.75 = 0.5
    w, empty = class_weights(long([0, 1, 1, 2, 2, 2]), long([0, 0, 1, 2]), 3)
    assert w.dtype == torch.float32 and empty == []
    assert w.tolist() == pytest.approx([3.0, 0.75, 0.5])
    # n_train = [4, 2, 0] (mean 2, over all three classes), n_val = [1, 2, 1] (mean 4/3)
    # w0 = 2/4 x 1/(4/3) = 0.375, w1 = 2/2 x 2/(4/3) = 1.5, w2 = 0 (no training example)
    w, empty = class_weights(long([0, 0, 0, 0, 1, 1]), long([0, 1, 1, 2]), 3)
    assert w.tolist() == pytest.approx([0.375, 1.5, 0.0]) and empty == [2]
    assert torch.isfinite(w).all()


def mlp_weights(kind: str, c: int | None = None) -> dict:
    """Weights of the 4-feature, 4-class ``mlp`` whose prediction is known: ``"argmax"``
    outputs its (non-negative) input, so it predicts the argmax of the features;
    ``"const"`` outputs a fixed logit vector and always predicts class ``c``."""
    model = create_model("mlp", input_shape=(4,), num_classes=4)
    first, second, last = model.net[1], model.net[3], model.net[5]
    with torch.no_grad():
        for layer in (first, second, last):
            layer.weight.zero_()
            layer.bias.zero_()
        if kind == "argmax":
            first.weight[:4, :4] = torch.eye(4)
            second.weight[:4, :4] = torch.eye(4)
            last.weight[:, :4] = torch.eye(4)
        else:
            last.bias[c] = 5.0
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def hand_problem():
    # noisy label, argmax of the features, in the current training set?
    rows = [
        (0, 2, True),
        (0, 0, False),
        (1, 1, True),
        (1, 3, True),
        (1, 1, False),
        (2, 1, True),
        (2, 0, True),
        (3, 3, True),
        (3, 0, False),
        (3, 1, True),
        (1, 2, False),
        (0, 3, True),
    ]
    x = np.full((len(rows), 4), 0.1, dtype=np.float32)
    for i, (_, a, _) in enumerate(rows):
        x[i, a] = 1.0 + 0.1 * (i % 3)
    y = long([r[0] for r in rows])
    current = long([i for i, r in enumerate(rows) if r[2]])
    dd = lambda a: to_device_data(a, mean=np.zeros(4), std=np.ones(4), device=CPU, channels_last=True)  # noqa: E731
    val_labels = long([0, 1, 1, 2, 3, 3, 3, 3])  # n_val = [1, 2, 1, 4], mean 2
    problem = RunTensors(
        train=dd(x),
        train_labels=y,
        val=dd(np.zeros((8, 4), np.float32)),
        val_labels=val_labels,
        test=None,
        test_labels=None,
        num_classes=4,
        input_shape=(4,),
    )
    return problem, current


def test_extraction_by_hand(capsys):
    problem, current = hand_problem()
    cfg = RunConfig(mode="clothing1m", model="mlp", epochs=1, max_outer_loop=1, max_inner_loop=2).resolved("mlp")
    eng = Engine(device=CPU, augment="crop_flip", batch_size=4, predict_chunk=5)  # chunks smaller than a class
    proc = Clothing1MProcedure(config=cfg, problem=problem, engine=eng)
    proc._start_outer()
    proc.state.phase_started = True
    s = proc.state
    assert s.train_index.tolist() == list(range(12))
    training_weights = {k: v.clone() for k, v in proc.model.state_dict().items()}
    s.run_best_weights = dict(training_weights)
    s.train_index = current  # [0, 2, 3, 5, 6, 7, 9, 11]
    # class 0 -> always predicts 0; classes 1 and 2 share the argmax weights; class 3 has none
    s.slots = {10: mlp_weights("const", 0), 11: mlp_weights("argmax")}
    s.class_slot = [10, 11, 11, None]
    s.best_scores = [12.5, 40.0, 3.0, 0.0]
    s.best_at = [{"outer": 1, "inner": 1, "epoch": 1}] * 3 + [None]
    # class 0 (0, 1, 11): all predicted 0, also 1, which is not in the current set -> 0, 1, 11
    # class 1 (2, 3, 4, 10): argmax 1, 3, 1, 2 -> 2, 4 (4 is not in the current set)
    # class 2 (5, 6): argmax 1, 0 -> none
    # class 3 (7, 8, 9): no checkpoint: its examples of the current set -> 7, 9 (not 8)
    index, without = proc.extract()
    assert index.tolist() == [0, 1, 2, 4, 7, 9, 11] and without == [3]
    # extraction leaves the network being trained alone (the model goes on to the next round)
    for k, v in proc.model.state_dict().items():
        assert torch.equal(v, training_weights[k])

    proc._end_round()
    r = s.rounds[-1]
    assert s.train_index.tolist() == [0, 1, 2, 4, 7, 9, 11]
    assert r["n_confident"] == 7 and r["per_class"] == [3, 2, 0, 2]
    assert r["kept_without_checkpoint"] == [3]
    # n_train = [3, 2, 0, 2] (mean 7/4), n_val = [1, 2, 1, 4] (mean 2)
    # w0 = 1.75/3 x 1/2 = 0.291667, w1 = 1.75/2 x 2/2 = 0.875, w2 = 0, w3 = 1.75/2 x 4/2 = 1.75
    assert r["class_weights"] == [0.291667, 0.875, 0.0, 1.75]
    assert s.class_weights.tolist() == pytest.approx([0.2916667, 0.875, 0.0, 1.75])
    assert "class 2 has no training example left" in capsys.readouterr().err
    assert (s.inner, s.epoch, s.stage) == (2, 0, "train")  # the next round goes on with the same model


def test_extraction_leaves_the_training_network_alone_before_any_run_best():
    """Reachable only when a class scores above 0 while the rounded plain validation accuracy
    is still 0.00 (one hit in more than 20,000 validation examples); then the next round would
    go on from the last checkpoint's weights instead of the network it was training."""
    problem, _ = hand_problem()
    cfg = RunConfig(mode="clothing1m", model="mlp", epochs=1, max_outer_loop=1, max_inner_loop=2).resolved("mlp")
    proc = Clothing1MProcedure(config=cfg, problem=problem, engine=Engine(device=CPU, augment="none", batch_size=4))
    proc._start_outer()
    s = proc.state
    before = {k: v.clone() for k, v in proc.model.state_dict().items()}
    s.slots, s.class_slot = {0: mlp_weights("const", 0)}, [0, None, None, None]
    assert s.run_best_weights is None
    proc.extract()
    for k, v in proc.model.state_dict().items():
        assert torch.equal(v, before[k])


# ------------------------------------------------------------------ miniature data
def blob_problem(n=150, noise=0.3, seed=0, k=4):
    """Gaussian blobs (4 features) with 30 % of the labels moved to the next class; clean
    validation and test labels."""
    x, clean, noisy = gaussian_blobs(n, k, 4, separation=2.5, spread=1.2, noise=noise, seed=seed)
    split = (slice(0, 90), slice(90, 120), slice(120, n))
    return run_tensors(x, noisy, clean, split=split, num_classes=k, input_shape=(4,), mean=np.zeros(4), std=np.ones(4))


def image_problem(n=150, noise=0.3, seed=1, k=4):
    """8 x 8 grey images, class c bright in quadrant c, with noise: the training batches are
    randomly cropped (padding 2) and flipped; evaluation and extraction must not be."""
    rs = np.random.RandomState(seed)
    clean = rs.randint(0, k, n)
    x = rs.normal(60, 40, (n, 8, 8, 1))
    for i, c in enumerate(clean):
        r, q = divmod(int(c), 2)
        x[i, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] += 90
    x = np.clip(x, 0, 255).astype(np.uint8)
    noisy = np.where(rs.rand(n) < noise, (clean + 1) % k, clean)
    split = (slice(0, 90), slice(90, 120), slice(120, n))
    return run_tensors(
        x, noisy, clean, split=split, num_classes=k, input_shape=(1, 8, 8), mean=[0.3], std=[0.25], padding=2
    )


PROBLEMS = {"blobs": (blob_problem, "none"), "images": (image_problem, "crop_flip")}
SCHEDULE = dict(epochs=2, max_outer_loop=2, max_inner_loop=2, milestones=(3,))


def config(seed=3):
    return RunConfig(mode="clothing1m", model="mlp", batch_size=16, lr=0.05, seed=seed, **SCHEDULE).resolved("mlp")


def make(kind, **kw):
    build, augment = PROBLEMS[kind]
    cfg = config()
    # one prediction chunk for everything, so that predictions are whole-set forward passes
    eng = Engine(device=CPU, augment=augment, batch_size=cfg.batch_size, predict_chunk=4096)
    return Clothing1MProcedure(config=cfg, problem=build(), engine=eng, **kw)


# ------------------------------------------------------------------ the oracle
def oracle(cfg: RunConfig, problem: RunTensors, engine: Engine) -> dict:
    """The specification, written out plainly: every epoch's weights kept, per class the
    strictly best epoch found by scanning, extraction one class at a time, class weights
    from counts in numpy. Same initial weights, batch order and augmentation draws as the
    procedure (one generator, consumed in the same order)."""
    k = problem.num_classes
    x_train, y_train = problem.train.x, problem.train_labels.numpy()
    y_val, y_test = problem.val_labels.numpy(), problem.test_labels.numpy()
    n_val = np.bincount(y_val, minlength=k).astype(np.float64)
    generator = torch.Generator(device=CPU)
    generator.manual_seed(cfg.seed)

    def weights_for(index):
        n_train = np.bincount(y_train[index], minlength=k).astype(np.float64)
        return np.array(
            [0.0 if n_train[c] == 0 else (n_train.mean() / n_train[c]) * (n_val[c] / n_val.mean()) for c in range(k)]
        )

    def fresh(outer):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed * 1000 + outer)
            return create_model(cfg.model, input_shape=problem.input_shape, num_classes=k)

    def predict(model, x):
        model.eval()
        with torch.no_grad():
            return model(x).argmax(dim=1).numpy()

    def scores_of(pred, labels):
        out = []
        for c in range(k):
            hits = int(np.sum((pred == c) & (labels == c)))
            support, predicted = int(np.sum(labels == c)), int(np.sum(pred == c))
            recall = 100 * hits / support if support else 0.0
            precision = 100 * hits / predicted if predicted else 0.0
            out.append(round(0.45 * recall + 0.55 * precision, 2))
        return out

    train_index = np.arange(len(y_train))
    w = weights_for(train_index)
    epochs, rounds = [], []
    best = {"val": 0.0, "test": None, "where": None}
    for outer in range(cfg.max_outer_loop):
        model = fresh(outer)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma)
        kept = []  # every epoch of this outer loop: (where, weights, per-class scores)
        for inner in range(1, cfg.max_inner_loop + 1):
            for epoch in range(1, cfg.epochs + 1):
                lr = optimizer.param_groups[0]["lr"]
                order = engine.epoch_order(torch.as_tensor(train_index), generator)
                engine.train_steps(
                    model,
                    model,
                    optimizer,
                    problem.train,
                    problem.train_labels,
                    order,
                    start=0,
                    loss_sum=torch.tensor(0.0),
                    generator=generator,
                    class_weights=torch.tensor(w, dtype=torch.float32),
                )
                pred = predict(model, problem.val.x)
                scores = scores_of(pred, y_val)
                val = round(100 * float(np.mean(pred == y_val)), 2)
                scheduler.step()
                where = {"outer": outer + 1, "inner": inner, "epoch": epoch}
                kept.append((where, {n: v.detach().clone() for n, v in model.state_dict().items()}, scores))
                epochs.append({**where, "n_train": len(train_index), "val_accuracy": val, "lr": lr, "scores": scores})
                if val > best["val"]:
                    test = round(100 * float(np.mean(predict(model, problem.test.x) == y_test)), 2)
                    best = {
                        "val": val,
                        "test": test,
                        "where": where,
                        "weights": {n: v.detach().clone() for n, v in model.state_dict().items()},
                    }
            # extraction, class by class, with the class's strictly best epoch so far
            confident, best_at, without = set(), [], []
            for c in range(k):
                top, at = 0.0, None
                for i, (_, _, scores) in enumerate(kept):
                    if scores[c] > top:
                        top, at = scores[c], i
                members = np.nonzero(y_train == c)[0]
                if at is None:
                    without.append(c)
                    best_at.append(None)
                    confident |= set(members.tolist()) & set(train_index.tolist())
                    continue
                best_at.append(kept[at][0])
                network = fresh(outer)
                network.load_state_dict(kept[at][1])
                pred = predict(network, x_train[torch.as_tensor(members)])
                confident |= set(members[pred == c].tolist())
            train_index = np.array(sorted(confident), dtype=np.int64)
            w = weights_for(train_index)
            rounds.append(
                {
                    "outer": outer + 1,
                    "inner": inner,
                    "n_confident": len(train_index),
                    "per_class": np.bincount(y_train[train_index], minlength=k).tolist(),
                    "class_weights": [round(float(v), 6) for v in w],
                    "best_at": best_at,
                    "kept_without_checkpoint": without,
                    "index": train_index.tolist(),
                }
            )
    return {"epochs": epochs, "rounds": rounds, "best": best, "train_index": train_index.tolist()}


@pytest.mark.parametrize("kind", ["blobs", "images"])
def test_procedure_matches_a_plain_implementation_of_the_specification(kind):
    proc = make(kind)
    expected = oracle(proc.cfg, proc.problem, proc.engine)
    s = proc.run()
    assert s.stage == "done"

    # the miniature must exercise the specification, not a degenerate case
    n = len(proc.problem.train_labels)
    assert any(r["n_confident"] < n for r in expected["rounds"])
    assert any(len({str(b) for b in r["best_at"]}) > 1 for r in expected["rounds"])  # classes differ
    if kind == "blobs":  # every class checkpointed; a later round's best is sometimes an earlier round's epoch
        assert all(r["kept_without_checkpoint"] == [] for r in expected["rounds"])
        assert any(b["inner"] < r["inner"] for r in expected["rounds"] for b in r["best_at"])
    else:  # the slow learner leaves classes without a positive score, round after round
        assert all(r["kept_without_checkpoint"] for r in expected["rounds"])
    # one MultiStepLR per outer loop (milestone 3), running on across its rounds
    assert [e["lr"] for e in expected["epochs"]] == pytest.approx(([0.05] * 3 + [0.005]) * 2)

    # every epoch: same scores, accuracy and training-set size
    assert len(s.history) == len(expected["epochs"]) == 8
    for row, e in zip(s.history, expected["epochs"]):
        assert {k: row[k] for k in ("outer", "inner", "epoch", "n_train")} == {
            k: e[k] for k in ("outer", "inner", "epoch", "n_train")
        }
        assert [row[f"score_{c}"] for c in range(proc.problem.num_classes)] == e["scores"]
        assert row["val_accuracy"] == pytest.approx(e["val_accuracy"])
        assert row["lr"] == pytest.approx(e["lr"])

    # every round: same per-class best epochs, confident sets and class weights
    assert len(s.rounds) == len(expected["rounds"]) == 4
    for got, want in zip(s.rounds, expected["rounds"]):
        for key in ("outer", "inner", "best_at", "n_confident", "per_class", "kept_without_checkpoint"):
            assert got[key] == want[key], (key, got, want)
        assert got["class_weights"] == pytest.approx(want["class_weights"], abs=2e-6)
    assert s.train_index.tolist() == expected["train_index"]
    assert s.class_weights.tolist() == pytest.approx(expected["rounds"][-1]["class_weights"], abs=2e-6)

    # the result: test accuracy at the best plain clean-validation epoch of the whole run
    assert s.run_best_where == expected["best"]["where"]
    assert s.run_best_val == pytest.approx(expected["best"]["val"])
    assert s.run_best_test == pytest.approx(expected["best"]["test"])
    for name, value in expected["best"]["weights"].items():
        assert torch.equal(s.run_best_weights[name], value)


# ------------------------------------------------------------------ pause and resume
def roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


@pytest.fixture(scope="module")
def uninterrupted():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        proc = make("images")
        proc.run()
    finally:
        torch.set_num_threads(threads)
    return proc


# The "images" run trains on 90 examples in outer loop 1 (6 steps an epoch, 24 in all) and
# on 53 in outer loop 2 (4 steps an epoch). Where each pause leaves the saved state:
# (outer, inner, epochs done in the round, step position inside the epoch, phase started)
PAUSES = {
    3: (0, 1, 0, 48, True),  # inside the first epoch
    6: (0, 1, 1, 0, True),  # on the last step of an epoch: the pause lands on its boundary
    12: (0, 2, 0, 0, True),  # at the end of round 1, after the extraction
    14: (0, 2, 0, 32, True),  # inside round 2, the model and optimizer carried over
    24: (1, 1, 0, 0, False),  # at the end of outer loop 1, before the fresh model
    30: (1, 1, 1, 32, True),  # inside the second outer loop
}


@pytest.mark.parametrize("pause_at", sorted(PAUSES))
def test_paused_and_resumed_run_equals_uninterrupted_run(uninterrupted, pause_at):
    steps = {"n": 0}

    def pause():
        steps["n"] += 1
        return steps["n"] == pause_at

    saved = {}
    first = make("images", on_checkpoint=lambda p: saved.update(state=roundtrip(p.state_dict())), should_pause=pause)
    first.run()
    assert first.paused and steps["n"] == pause_at
    st = saved["state"]
    assert (st["outer"], st["inner"], st["epoch"], st["step_pos"], st["phase_started"]) == PAUSES[pause_at]
    second = make("images")
    second.load_state_dict(saved["state"])
    second.run()
    assert not second.paused
    a, b = uninterrupted.state, second.state
    assert a.stage == b.stage == "done"
    assert a.history == b.history
    assert a.rounds == b.rounds
    assert (a.run_best_val, a.run_best_test, a.run_best_where) == (b.run_best_val, b.run_best_test, b.run_best_where)
    assert torch.equal(a.train_index, b.train_index) and torch.equal(a.class_weights, b.class_weights)
    assert (a.best_scores, a.best_at, a.class_slot) == (b.best_scores, b.best_at, b.class_slot)
    for k in a.run_best_weights:
        assert torch.equal(a.run_best_weights[k], b.run_best_weights[k])
    assert a.slots.keys() == b.slots.keys()
    for slot in a.slots:
        for k in a.slots[slot]:
            assert torch.equal(a.slots[slot][k], b.slots[slot][k])

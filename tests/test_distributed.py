"""Distributed runs (torchrun, DistributedDataParallel) on the CPU with gloo.

Two processes are started the way ``torchrun`` starts them (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT`` in the environment), either running this
file's worker (engine and procedure level) or ``python -m memomentum run``; one test goes
through ``torchrun`` itself (``python -m torch.distributed.run``). Tiny data and models
(LeNet on 12 x 12 images, the MLP on the embedded digits, one to four epochs): most of the
file's cost (about 110 CPU-seconds in all) is starting the 14 Python processes, each of which
imports torch, and the in-process runs that compare with them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, SCHEDULE_2_EPOCHS, flags, run_tensors

N_TRAIN, N_VAL, SIDE, CLASSES = 149, 45, 12, 3  # 149 = 9 batches of 16 + one of 5 (split 3 + 2)
BATCH, CHUNK = 16, 32  # 149 examples = 5 prediction chunks: 3 for rank 0, 2 for rank 1
COLLECTIVE_TIMEOUT_S = 60


# -- launching ranks ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_env(rank: int, world: int, port: int, **extra) -> dict:
    env = dict(
        os.environ,
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        OMP_NUM_THREADS="1",
    )
    env.pop("MEMOMENTUM_TEST_KILL_AT", None)
    env.update(extra)
    return env


def _start(world: int, argv: list[str], cwd: Path, rank_env: dict | None = None) -> list[subprocess.Popen]:
    """Start ``world`` processes as torchrun would, each running ``python argv``."""
    port = _free_port()
    extra = rank_env or {}
    return [
        subprocess.Popen(
            [sys.executable, *argv],
            cwd=cwd,
            env=_rank_env(r, world, port, **extra.get(r, {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(world)
    ]


def _finish(procs: list[subprocess.Popen], timeout: float = 240) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a distributed run hung")
        out.append((p.returncode, stdout, stderr))
    return out


def _run_cli(world: int, args: list[str], cwd: Path, rank_env: dict | None = None) -> list[tuple[int, str, str]]:
    return _finish(_start(world, ["-m", "memomentum", "run", *args], cwd, rank_env))


# -- the tiny problem (the same in the worker and in the test process) ------------------------
def image_problem():
    rs = np.random.RandomState(0)
    n = N_TRAIN + N_VAL + 40
    clean = rs.randint(0, CLASSES, n)
    x = rs.randint(0, 120, size=(n, SIDE, SIDE, 1)).astype(np.uint8)
    for c in range(CLASSES):  # a learnable bright band per class
        x[clean == c, 4 * c : 4 * c + 4, :, 0] += 120
    noisy = np.where(rs.rand(n) < 0.25, (clean + 1) % CLASSES, clean)
    split = (slice(0, N_TRAIN), slice(N_TRAIN, N_TRAIN + N_VAL), slice(N_TRAIN + N_VAL, n))
    return run_tensors(
        x, noisy, clean, split=split, num_classes=CLASSES, input_shape=(1, SIDE, SIDE), mean=[0.4], std=[0.3]
    )


def _engine(dist):
    from memomentum.training.engine import Engine

    return Engine(device=torch.device("cpu"), augment="crop_flip", batch_size=BATCH, predict_chunk=CHUNK, dist=dist)


def train_two_epochs(dist, *, weighted: bool) -> dict:
    """20 steps of LeNet (no BatchNorm) with augmentation, the last batch of each epoch smaller."""
    from memomentum.training.models import create_model

    problem, engine = image_problem(), _engine(dist)
    torch.manual_seed(0)
    model = engine.prepare(create_model("lenet", input_shape=problem.input_shape, num_classes=CLASSES))
    forward = engine.training_forward(model, engine.forward_fn(model))
    optimizer = engine.make_optimizer(model, lr=0.05, momentum=0.9, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(3)
    weights = torch.tensor([0.5, 1.0, 2.5]) if weighted else None
    total = 0.0
    for _ in range(2):
        order = engine.epoch_order(torch.arange(N_TRAIN), generator)
        loss_sum, pos = engine.train_steps(
            model,
            forward,
            optimizer,
            problem.train,
            problem.train_labels,
            order,
            start=0,
            loss_sum=torch.tensor(0.0),
            generator=generator,
            class_weights=weights,
        )
        assert pos == N_TRAIN
        total += dist.sum_floats(loss_sum)
    return {
        "params": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "generator": generator.get_state(),
        "loss_sum": total,
    }


def predictions(dist, weights: dict) -> dict:
    """Every prediction pass of a run, for fixed weights."""
    from memomentum.training.models import create_model

    problem, engine = image_problem(), _engine(dist)
    model = engine.prepare(create_model("lenet", input_shape=problem.input_shape, num_classes=CLASSES))
    model.load_state_dict(weights)
    quirk = torch.Generator().manual_seed(5)  # the reference's augmented prediction
    pred, conf = engine.predict(model, model, problem.train)
    members = torch.nonzero(problem.train_labels != 1).flatten()  # a subset, as the per-class extraction
    sub_pred, sub_conf = engine.predict(model, model, problem.train, index=members)
    aug_pred, aug_conf = engine.predict(model, model, problem.train, generator=quirk)
    return {
        "pred": pred,
        "conf": conf,
        "sub_pred": sub_pred,
        "sub_conf": sub_conf,
        "aug_pred": aug_pred,
        "aug_conf": aug_conf,
        "quirk_generator": quirk.get_state(),
        "confident": torch.nonzero(pred == problem.train_labels).flatten(),
        "val_counts": engine.predict_counts(model, model, problem.val, problem.val_labels, CLASSES),
        "proba": engine.predict_proba(model, model, problem.test, num_classes=CLASSES),
    }


def procedure_run(dist, mode: str) -> dict:
    """A short Me-Momentum run (first phase, one inner round; Clothing1M mode: two rounds)."""
    from memomentum.config import RunConfig
    from memomentum.method.clothing1m import Clothing1MProcedure
    from memomentum.method.procedure import Procedure

    cfg = RunConfig(
        model="lenet",
        mode=mode,
        batch_size=BATCH,
        lr=0.05,
        epochs=2,
        max_outer_loop=1,
        max_inner_loop=2,
        milestones=(1,),
    ).resolved("lenet")
    kind = Clothing1MProcedure if mode == "clothing1m" else Procedure
    proc = kind(config=cfg, problem=image_problem(), engine=_engine(dist))
    state = proc.run()
    weights = state.run_best_weights if state.run_best_weights is not None else state.outer_best_weights
    return {
        "weights": weights,
        "history": state.history,
        "rounds": state.rounds,
        "train_index": state.train_index,
        "generator": proc.generator.get_state(),
        "test": state.run_best_test,
    }


def worker(out_dir: str) -> None:
    """One rank: every scenario, results saved for the test process to compare."""
    from datetime import timedelta

    from memomentum.training import distributed

    torch.set_num_threads(1)
    timeout = timedelta(seconds=COLLECTIVE_TIMEOUT_S)
    with distributed.process_group(torch.device("cpu"), timeout=timeout) as (dist, _):
        # the weights one process trains (the same bits in the test process): predicted with both ranks
        weights = train_two_epochs(distributed.SINGLE, weighted=False)["params"]
        results = {
            "trained": train_two_epochs(dist, weighted=False),
            "weighted": train_two_epochs(dist, weighted=True),
            "predictions": predictions(dist, weights),
            "benchmark": procedure_run(dist, "benchmark"),
            "clothing1m": procedure_run(dist, "clothing1m"),
            "dist": dist.describe(),
        }
    torch.save(results, Path(out_dir) / f"rank{dist.rank}.pt")


# -- engine and procedure level ---------------------------------------------------------------
@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Both ranks' results (one launch for all the engine and procedure tests)."""
    out = tmp_path_factory.mktemp("ranks")
    results = _finish(_start(2, [str(Path(__file__).resolve()), "worker", str(out)], REPO))
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.fixture(scope="module")
def single():
    """The same scenarios in this process, without any process group."""
    from memomentum.training.distributed import SINGLE

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trained = train_two_epochs(SINGLE, weighted=False)
        return {
            "trained": trained,
            "weighted": train_two_epochs(SINGLE, weighted=True),
            "predictions": predictions(SINGLE, trained["params"]),
        }
    finally:
        torch.set_num_threads(threads)


def _identical(a, b) -> bool:
    """Bit for bit, through dicts, lists and tensors."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    return a == b


@pytest.mark.parametrize("mode", ["benchmark", "clothing1m"])
def test_ranks_end_a_run_bit_identical(ranks, mode):
    a, b = ranks[0][mode], ranks[1][mode]
    assert a["history"] and a["rounds"]
    assert _identical(a, b)
    # the run really trained: its training loss fell, and the Clothing1M mode (more epochs) learned
    # the classes (one process: 77.78 % clean validation accuracy; chance is 33.3 %)
    assert a["history"][-1]["train_loss"] < a["history"][0]["train_loss"]
    if mode == "clothing1m":
        assert max(row["val_accuracy"] for row in a["history"]) > 60
    assert ranks[0]["dist"] == {"world_size": 2, "backend": "gloo"}


@pytest.mark.parametrize("case", ["trained", "weighted"])
def test_ddp_steps_match_one_process_on_the_global_batch(ranks, single, case):
    """20 steps (two epochs, uneven last batches), with and without class weights: the
    averaged gradient of the two shares is the gradient of the whole batch."""
    one = single[case]
    for rank in ranks:
        got = rank[case]
        assert torch.equal(got["generator"], one["generator"])  # same order and augmentation drawn
        for name, value in one["params"].items():
            assert torch.allclose(got["params"][name], value, rtol=0, atol=1e-6), name
        assert got["loss_sum"] == pytest.approx(one["loss_sum"], rel=1e-6)
    assert _identical(ranks[0][case]["params"], ranks[1][case]["params"])
    # not vacuous: the steps moved the weights
    torch.manual_seed(0)
    from memomentum.training.models import create_model

    start = create_model("lenet", input_shape=(1, SIDE, SIDE), num_classes=CLASSES).state_dict()
    assert (one["params"]["fc3.weight"] - start["fc3.weight"]).abs().max() > 1e-3


def test_predictions_counts_and_confident_set_match_one_process(ranks, single):
    one = single["predictions"]
    for rank in ranks:
        assert _identical(rank["predictions"], one)
    assert one["pred"].numel() == N_TRAIN and one["proba"].shape == (40, CLASSES)
    assert int(one["val_counts"][1].sum()) == N_VAL
    assert 0 < one["confident"].numel() < N_TRAIN


# -- whole runs from the command line -----------------------------------------------------------
DIGITS = [
    "--device",
    "cpu",
    "--noise-type",
    "symmetric",
    "--noise-rate",
    "0.3",
    *flags(**SCHEDULE_2_EPOCHS),
    "--quiet",
]


def _results(run_dir: Path) -> dict:
    """What a run leaves that must reproduce bit for bit."""
    model = torch.load(run_dir / "model.pt", weights_only=False)["state_dict"]
    return {
        "model": model,
        "examples": (run_dir / "examples.csv").read_text(),
        "history": [dict(row) for row in _history(run_dir)],
    }


def _history(run_dir: Path) -> list[dict]:
    import csv

    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_world_size_one_under_torchrun_equals_a_plain_run(tmp_path):
    from memomentum.config import RunConfig
    from memomentum.entrypoints.api import run

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "1",
            "-m",
            "memomentum",
            "run",
            *DIGITS,
            "--out",
            "torchrun",
        ],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain = run(
        RunConfig(
            device="cpu",
            noise_type="symmetric",
            noise_rate=0.3,
            epochs=2,
            max_outer_loop=1,
            max_inner_loop=2,
            progress=False,
            out=str(tmp_path / "plain"),
        )
    )
    under = json.loads((tmp_path / "torchrun" / "summary.json").read_text())
    assert (under["world_size"], under["backend"]) == (1, "gloo")
    assert (plain.summary["world_size"], plain.summary["backend"]) == (1, "none")
    assert _identical(_results(tmp_path / "torchrun"), _results(tmp_path / "plain"))
    assert under["test_accuracy"] == plain.summary["test_accuracy"]


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """Three two-rank runs side by side: one uninterrupted, one where rank 1 alone gets
    SIGTERM once training has begun, one where rank 1 is killed (SIGKILL) in epoch 2."""
    cwd = tmp_path_factory.mktemp("runs")
    t0 = time.monotonic()
    whole = _start(2, ["-m", "memomentum", "run", *DIGITS, "--out", "whole"], cwd)
    killed = _start(
        2, ["-m", "memomentum", "run", *DIGITS, "--out", "killed"], cwd, {1: {"MEMOMENTUM_TEST_KILL_AT": "step:60"}}
    )  # 41 steps per epoch
    paused = _start(2, ["-m", "memomentum", "run", *DIGITS, "--out", "paused"], cwd)
    # history.csv is written after the first barrier, so by then rank 1 handles signals
    deadline = time.monotonic() + 240
    while not (cwd / "paused" / "history.csv").exists() and paused[1].poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    paused[1].send_signal(signal.SIGTERM)
    results = {"whole": _finish(whole), "paused": _finish(paused), "killed": _finish(killed)}
    return cwd, results, time.monotonic() - t0


def _resume_in_this_process(run_dir: Path):
    from memomentum.cli import build_parser
    from memomentum.cli.run import run_config
    from memomentum.entrypoints.api import run

    cfg, _ = run_config(build_parser().parse_args(["run", "--resume", str(run_dir), "--quiet"]))
    return run(cfg, resume=True)


def test_pause_on_one_rank_then_resume_with_two_or_one(interrupted):
    cwd, results, _ = interrupted
    whole, paused = results["whole"], results["paused"]
    assert [rc for rc, _, _ in whole] == [0, 0], whole[0][2][-2000:]
    assert [rc for rc, _, _ in paused] == [143, 143], paused[0][2][-2000:] + paused[1][2][-2000:]
    assert "checkpoint saved" in paused[0][2] and "checkpoint saved" not in paused[1][2]  # rank 0 alone reports
    saved = torch.load(cwd / "paused" / "checkpoint.pt", weights_only=False)["procedure"]
    assert saved["step_pos"] > 0 and not (cwd / "paused" / "summary.json").exists()  # stopped inside an epoch
    shutil.copytree(cwd / "paused", cwd / "paused-one")

    # world size 2 again: exactly the uninterrupted run
    resumed = _run_cli(2, ["--resume", "paused"], cwd)
    assert [rc for rc, _, _ in resumed] == [0, 0], resumed[0][2][-3000:] + "\n=====RANK1=====\n" + resumed[1][2][-6000:]
    assert _identical(_results(cwd / "paused"), _results(cwd / "whole"))

    # world size 1 (a plain process) takes over the saved state and finishes the run
    one = _resume_in_this_process(cwd / "paused-one")
    assert (one.summary["world_size"], one.summary["backend"]) == (1, "none")
    history, reference = _history(cwd / "paused-one"), _history(cwd / "whole")
    assert len(history) == len(reference) == 4
    done = len(saved["history"])  # the epochs finished before the pause are the whole run's
    assert history[:done] == reference[:done]


def test_a_dead_rank_ends_the_others_with_a_message_and_a_resumable_checkpoint(interrupted):
    cwd, results, _ = interrupted
    killed = results["killed"]
    assert killed[1][0] == -signal.SIGKILL
    rc, _, err = killed[0]
    assert rc == 1, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("memomentum: error: process 0 lost contact"), err[-2000:]
    assert "--resume killed" in lines[0] and "Traceback" not in err
    saved = torch.load(cwd / "killed" / "checkpoint.pt", weights_only=False)["procedure"]
    assert len(saved["history"]) == 1  # the checkpoint of epoch 1, intact
    resumed = _resume_in_this_process(cwd / "killed")
    assert resumed.summary["epochs_run"] == 4


def test_a_batch_that_does_not_split_evenly_is_refused():
    from memomentum.base.errors import InputError
    from memomentum.training.distributed import Distributed
    from memomentum.training.engine import Engine

    with pytest.raises(InputError, match="batch size 15 does not split evenly over 2 processes"):
        Engine(device=torch.device("cpu"), augment="none", batch_size=15, dist=Distributed(world_size=2))


@pytest.mark.parametrize("kind", ["resident", "streamed"])
def test_the_shares_of_every_batch_make_up_the_whole_batch(kind):
    """Each process reads only its rows of every batch (a streamed source reads only those
    rows from disk), yet gets them cropped and flipped exactly as one process would, and its
    generator ends in the same state."""
    from memomentum.training.sources import StreamedSource, to_device_data

    rs = np.random.RandomState(1)
    images = rs.randint(0, 256, size=(37, 10, 10, 3)).astype(np.uint8)
    cpu = torch.device("cpu")
    if kind == "resident":
        source = to_device_data(images, mean=[0.5] * 3, std=[0.25] * 3, device=cpu, channels_last=True)
    else:
        source = StreamedSource(images, mean=[0.5] * 3, std=[0.25] * 3, device=cpu)
    order = torch.as_tensor(rs.permutation(37))
    whole_gen = torch.Generator().manual_seed(7)
    whole = list(source.batches(order, 8, augment=whole_gen))  # 4 batches of 8 and one of 5
    for world in (2, 3):
        gens = [torch.Generator().manual_seed(7) for _ in range(world)]
        shares = [list(source.batches(order, 8, augment=g, shard=(r, world))) for r, g in enumerate(gens)]
        for b, batch in enumerate(whole):
            assert torch.equal(torch.cat([shares[r][b] for r in range(world)]), batch)
        assert all(torch.equal(g.get_state(), whole_gen.get_state()) for g in gens)
    # skipping the batches another process reads consumes the generator as reading them does
    skipped = torch.Generator().manual_seed(7)
    source.skip_draws([8, 8, 8, 8, 5], skipped)
    assert torch.equal(skipped.get_state(), whole_gen.get_state())


def test_contiguous_blocks_and_prediction_blocks():
    from memomentum.training.distributed import Distributed, block_bounds

    assert [block_bounds(7, r, 3) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]
    assert [block_bounds(1, r, 2) for r in range(2)] == [(0, 1), (1, 1)]  # a share may be empty
    for world in (1, 2, 4, 8):
        for n in (0, 1, 5, 31, 32, 33, 149):
            blocks = []
            for r in range(world):
                engine = _engine(Distributed(rank=r, world_size=world))
                first, last, sizes = engine.prediction_block(n)
                blocks.append((first, last))
                assert sum(sizes) == n and sizes[r] == last - first
                assert first % CHUNK == 0  # whole chunks, as one process cuts them
            assert [b for b in blocks if b[1] > b[0]] == sorted(b for b in blocks if b[1] > b[0])
            assert sum(last - first for first, last in blocks) == n


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "worker":
    sys.path.insert(0, str(REPO))
    worker(sys.argv[2])


@pytest.mark.parametrize("world", [None, 1, 2])
def test_a_process_of_a_multi_process_run_ends_without_the_interpreters_teardown(world):
    """gloo's threads outlive destroy_process_group once DDP has used the group; a process
    of a run with several processes therefore ends at once (os._exit) after its work, so that
    no teardown runs beside them (an atexit handler stands for the teardown here)."""
    script = (
        "import atexit; atexit.register(lambda: print('teardown', flush=True)); "
        "from memomentum.cli import _end_distributed_process; _end_distributed_process(3); "
        "raise SystemExit(0)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    if world is not None:
        env.update(RANK="0", WORLD_SIZE=str(world))
    r = subprocess.run(
        [sys.executable, "-c", script], env=dict(env, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=120
    )
    if world == 2:
        assert (r.returncode, r.stdout) == (3, "")  # its exit status, and no teardown
    else:
        assert (r.returncode, r.stdout) == (0, "teardown\n")  # a plain process ends as usual


def test_under_torchrun_a_mistake_is_reported_once_by_rank_zero(tmp_path):
    """Both processes refuse the bad value; rank 0 alone says so, in one line."""
    results = _run_cli(2, ["--noise-rate", "2", "--quiet", "--out", "bad"], tmp_path)
    assert [rc for rc, _, _ in results] == [2, 2]
    assert results[0][2].strip() == "memomentum: error: noise rate 2.0 is outside [0, 1)"
    assert results[1][2] == ""
    typo = _run_cli(2, ["--epochz", "3"], tmp_path)  # argparse's usage and error, too
    assert [rc for rc, _, _ in typo] == [2, 2] and "unrecognized arguments: --epochz" in typo[0][2]
    assert typo[1][2] == ""


def test_cuda_graph_is_refused_for_several_processes_before_the_data_are_prepared(monkeypatch, tmp_path):
    from memomentum import RunConfig
    from memomentum.base.errors import InputError
    from memomentum.runner import pipeline
    from memomentum.training.distributed import Distributed

    monkeypatch.setattr(pipeline, "prepare_data", lambda *a, **k: pytest.fail("the data were prepared"))
    cfg = RunConfig(cuda_graph=True, out=str(tmp_path / "run"), progress=False)
    with pytest.raises(
        InputError,
        match="--cuda-graph records the step of a single process; leave it out under torchrun \\(2 processes\\)",
    ):
        pipeline.run_pipeline(
            cfg,
            Distributed(world_size=2),
            torch.device("cpu"),
            0.0,
            resume=False,
            overwrite=False,
            write=False,
            dataset=None,
        )

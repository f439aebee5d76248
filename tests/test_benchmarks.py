"""The benchmark scripts run and print the JSON their README figures come from (tiny sizes:
this checks the scripts, not the speed)."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import require_fashion_mnist
from memomentum.threads import SPIN_COUNT

ROOT = Path(__file__).resolve().parents[1]


def _run_json(*args: str) -> dict:
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def test_epoch_speed_times_both_sides_in_turn_and_their_model_floors():
    fashion = require_fashion_mnist()
    out = _run_json("benchmarks/epoch_speed.py", "--case", "lenet", "--n", "256", "--repeats", "2",
                    "--workers", "1", "--fashion-dir", str(fashion), "--device", "cpu")
    case = out["cases"]["lenet"]
    assert out["device"] == "cpu" and out["batch_size"] == 128 and out["torch_threads"] >= 1
    for side in ("engine", "conventional"):
        measured = case[side]["measured"]
        assert len(measured["train"]) == len(measured["predict"]) == len(measured["floor"]) == 2
        assert case[side]["train_epoch_s"] == round(min(measured["train"]), 3) > 0
    ratio = case["conventional"]["train_epoch_s"] / case["engine"]["train_epoch_s"]
    assert abs(case["speedup"]["train"] - ratio) < 0.05 * ratio + 0.02
    floor = case["model_step_floor"]
    assert floor["conventional_model_train_epoch_s"] > 0 and floor["engine_model_train_epoch_s"] > 0


def test_full_run_reports_wall_time_split_and_memory():
    out = _run_json("benchmarks/full_run.py", "--dataset", "digits", "--epochs", "2", "--max-outer-loop", "1",
                    "--max-inner-loop", "2", "--device", "cpu")
    assert out["epochs_run"] == 4 and out["device"] == "cpu"
    assert set(out["time_s"]) >= {"train", "predict", "evaluate"}
    assert out["wall_time_s"] > 0 and out["peak_rss_mb"] > 0 and out["peak_gpu_memory_mb"] is None
    assert 0 <= out["test_accuracy"] <= 100 and len(out["rounds"]) == 1


def test_contention_times_each_policy_beside_competitors_it_starts_and_stops():
    fashion = require_fashion_mnist()
    out = _run_json("benchmarks/contention.py", "--case", "lenet", "--n", "1280", "--repeats", "1",
                    "--policies", "old,new,threads1", "--conditions", "quiet,busy:1,quiet", "--settle", "0",
                    "--fashion-dir", str(fashion))
    case = out["case"]
    assert case["policies"]["old"]["wait"]["GOMP_SPINCOUNT"] == "300000"
    assert case["policies"]["new"]["wait"]["GOMP_SPINCOUNT"] == str(SPIN_COUNT)
    assert case["policies"]["threads1"]["threads"] == 1
    assert case["policies"]["new"]["threads"] == case["policies"]["old"]["threads"] >= 1
    quiet, busy = case["conditions"]["quiet"], case["conditions"]["busy:1"]
    assert len(quiet["new"]["train"]["all_s"]) == 2 and len(busy["new"]["train"]["all_s"]) == 1  # quiet twice
    for name in ("old", "new", "threads1"):
        for what in ("train", "predict"):
            entry = busy[name][what]
            ratio = entry["median_s"] / quiet[name][what]["median_s"]  # of rounded times: allow 10 %
            assert entry["slowdown"] > 0 and abs(entry["slowdown"] - ratio) <= 0.1 * ratio + 0.01
    # the competitors are gone once the script has finished
    r = subprocess.run(["pgrep", "-f", "go_on()"], capture_output=True, text=True)
    assert r.stdout.strip() == ""

"""The benchmark scripts run and print the JSON their figures in docs/results.md come from (tiny sizes:
this checks the scripts, not the speed)."""

import json
import subprocess
import sys

from helpers import REPO, SCHEDULE_2_EPOCHS, flags, require_fashion_mnist

from memomentum.training.threads import BUSY_SPIN_COUNT, QUIET_SPIN_COUNT


def _run_json(*args: str) -> dict:
    r = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def test_epoch_speed_times_both_sides_in_turn_and_their_model_floors():
    fashion = require_fashion_mnist()
    out = _run_json(
        "benchmarks/epoch_speed.py",
        "--case",
        "lenet",
        "--n",
        "256",
        "--repeats",
        "2",
        "--workers",
        "1",
        "--fashion-dir",
        str(fashion),
        "--device",
        "cpu",
    )
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
    out = _run_json(
        "benchmarks/full_run.py",
        "--dataset",
        "digits",
        *flags(**SCHEDULE_2_EPOCHS),
        "--device",
        "cpu",
    )
    assert out["epochs_run"] == 4 and out["device"] == "cpu"
    assert set(out["time_s"]) >= {"train", "predict", "evaluate"}
    assert out["wall_time_s"] > 0 and out["peak_rss_mb"] > 0 and out["peak_gpu_memory_mb"] is None
    assert out["test_accuracy"] > 60 and len(out["rounds"]) == 1  # 76.94 % measured (chance: 10 %)


def test_contention_times_each_policy_beside_competitors_it_starts_and_stops():
    fashion = require_fashion_mnist()
    out = _run_json(
        "benchmarks/contention.py",
        "--case",
        "lenet",
        "--n",
        "1280",
        "--repeats",
        "1",
        "--policies",
        "old,new,unbound,threads1",
        "--conditions",
        "quiet,busy:1,quiet",
        "--settle",
        "0",
        "--fashion-dir",
        str(fashion),
    )
    case = out["case"]
    assert case["policies"]["old"]["wait"]["GOMP_SPINCOUNT"] == "300000"
    new = case["policies"]["new"]  # bound: the long spin in every condition
    assert new["quiet"]["wait"]["GOMP_SPINCOUNT"] == new["busy"]["wait"]["GOMP_SPINCOUNT"] == str(QUIET_SPIN_COUNT)
    unbound = case["policies"]["unbound"]  # the load rule's spin for each condition, one process each
    assert unbound["quiet"]["wait"]["GOMP_SPINCOUNT"] == str(QUIET_SPIN_COUNT)
    assert unbound["busy"]["wait"]["GOMP_SPINCOUNT"] == str(BUSY_SPIN_COUNT)
    assert case["policies"]["threads1"]["threads"] == 1
    assert case["policies"]["new"]["threads"] == case["policies"]["old"]["threads"] >= 1
    assert unbound["quiet"]["binding"] == "not bound"
    assert new["quiet"]["binding"].startswith("cores " if case["policies"]["new"]["threads"] > 1 else "not bound")
    quiet, busy = case["conditions"]["quiet"], case["conditions"]["busy:1"]
    assert len(quiet["new"]["train"]["all_s"]) == 2 and len(busy["new"]["train"]["all_s"]) == 1  # quiet twice
    for name in ("old", "new", "unbound", "threads1"):
        for what in ("train", "predict"):
            entry = busy[name][what]
            ratio = entry["median_s"] / quiet[name][what]["median_s"]  # of rounded times: allow 10 %
            assert entry["slowdown"] > 0 and abs(entry["slowdown"] - ratio) <= 0.1 * ratio + 0.01
    # the competitors are gone once the script has finished
    r = subprocess.run(["pgrep", "-f", "go_on()"], capture_output=True, text=True)
    assert r.stdout.strip() == ""


def test_image_pipeline_packs_both_formats_and_times_every_pipeline_in_turn(tmp_path):
    out = _run_json(
        "benchmarks/image_pipeline.py",
        "--n",
        "12",
        "--rounds",
        "2",
        "--images-per-round",
        "8",
        "--batch-size",
        "4",
        "--workers",
        "1",
        "--image-size",
        "32",
        "--work-dir",
        str(tmp_path),
    )
    assert out["n_images"] == 12 and out["workers"] == 1 and out["padding"] == 4
    assert len(list((tmp_path / "sources").glob("*.jpg"))) == 12
    for fmt in ("jpeg", "raw"):
        assert out["pack"][fmt]["seconds_per_10k"] > 0 and out["pack"][fmt]["disk_gb_per_10k"] > 0
    assert out["pack"]["raw"]["kb_per_image"] >= 32 * 32 * 3 / 1000
    assert out["same_images"]["raw_equals_conventional_resize"] is True
    for kind, names in (
        ("per_core", ("conventional", "packed_jpeg", "packed_raw", "device_step_on_this_cpu")),
        ("loader", ("conventional", "packed_jpeg", "packed_raw", "packed_jpeg_uint8_only")),
    ):
        for name in names:
            entry = out[kind][name]
            assert len(entry["seconds"]) == 2 and entry["images_per_s"] > 0
    ratio = out["per_core"]["packed_jpeg"]["images_per_s"] / out["per_core"]["conventional"]["images_per_s"]
    assert abs(out["ratio"]["per_core_packed_jpeg_vs_conventional"] - ratio) < 0.01 * ratio + 0.01
    projection = out["projection"]
    assert projection["cores"] == 16 and projection["resnet50_needs_images_per_s"] == 3000
    assert projection["packed_jpeg_images_per_s"] == round(out["per_core"]["packed_jpeg"]["images_per_s"] * 16)


def test_clothing1m_rehearsal_runs_every_step_in_its_own_process_and_projects_an_epoch(tmp_path):
    out = _run_json(
        "benchmarks/clothing1m_rehearsal.py",
        "--work-dir",
        str(tmp_path),
        "--n-keys",
        "2000",
        "--n-stream",
        "512",
        "--rss-entries",
        "1000",
        "--rss-n-stream",
        "256",
        "--sources-per-class",
        "2",
        "--source-size",
        "64x48",
        "--image-size",
        "64",
        "--workers",
        "1",
        "--device-workers",
        "1",
    )
    n_sources = out["annotations"]["n_sources"]
    assert out["annotations"]["reused"] is False and n_sources == 14 * 2 + 2 * 14  # 28 clean-noisy, 14 val, 14 test
    assert out["read"]["n_train"] == 2000 and out["read"]["seconds"] >= 0 and not out["read"]["torch_loaded"]
    assert out["pack"]["n_images"] == n_sources and out["pack"]["mean_kb_per_image"] > 0
    check = out["reuse_check"]
    assert check["n_paths"] == 2000 and check["changed"] == 0 and check["entries_not_linked_as_expected"] == 0
    for entries, streamed in (("2000", 512), ("1000", 256)):
        step = out["stream"][entries]
        assert step["entries"] == int(entries) and step["n_stream"] == streamed
        assert set(step["passes"]) == {
            "in_process_shuffled",
            "device_index_w1",
            "device_shuffled_w1",
            "readers_index_w1",
            "readers_shuffled_w1",
        }
        for name, entry in step["passes"].items():
            assert entry["images_per_s"] > 0
            if name != "in_process_shuffled":
                assert entry["images"] == streamed and entry["images_per_s_per_reader"] == entry["images_per_s"]
        memory = step["peak_memory"]
        assert memory["processes"] >= 2  # the reader process was seen
        assert 0 < memory["sum_pss_mb"] <= memory["sum_rss_mb"] < 4096
    assert out["stream_peak_rss"]["below_goal"] is True
    projection = out["projection"]
    per_reader = out["stream"]["2000"]["passes"]["readers_shuffled_w1"]["images_per_s"]
    assert projection["basis"] == "readers_shuffled_w1" and projection["per_reader_images_per_s"] == per_reader
    assert abs(projection["epoch_s"] - 1_000_000 / (per_reader * 16)) < 0.1
    assert projection["feeds_resnet50"] == (per_reader * 16 >= 3000)
    # a second run reuses the release and the store (each step alone prints its JSON line)
    same = (
        "--work-dir",
        str(tmp_path),
        "--n-keys",
        "2000",
        "--sources-per-class",
        "2",
        "--source-size",
        "64x48",
        "--image-size",
        "64",
    )
    assert _run_json("benchmarks/clothing1m_rehearsal.py", "--step", "annotations", *same)["reused"] is True
    again = _run_json("benchmarks/clothing1m_rehearsal.py", "--step", "pack", *same)
    assert again["reused"] is True and again["store"] == out["pack"]["store"]


def test_modes_fmnist_compares_the_three_methods_on_one_noise_and_split():
    require_fashion_mnist()
    out = _run_json("benchmarks/modes_fmnist.py", "--quick", "--threads", "1")
    assert out["quick"] is True and out["n_train_images"] == 2000 and out["n_test_images"] == 500
    assert out["noise_type"] == "instance" and out["noise_rate"] == 0.4 and out["seed"] == 1
    assert out["same_noise_and_split"] is True and all(out["same_noise_and_split_checks"].values())
    runs = out["runs"]
    assert set(runs) == {"memomentum", "clothing1m_mode", "ce"}
    expected = {
        "memomentum": ("benchmark", "memomentum", 4, 1),
        "clothing1m_mode": ("clothing1m", "memomentum", 2, 2),
        "ce": ("benchmark", "ce", 2, 0),
    }  # mode, method, epochs run, rounds
    for name, (mode, method, epochs, n_rounds) in expected.items():
        r = runs[name]
        assert (r["schedule"]["mode"], r["schedule"]["method"]) == (mode, method)
        assert r["schedule"]["lr"] == 0.01 and r["schedule"]["batch_size"] == 128
        assert r["schedule"]["weight_decay"] == 0.0001 and r["threads"] == 1
        assert r["epochs_run"] == epochs and len(r["rounds"]) == n_rounds
        assert (r["n_train"], r["n_val"]) == (1800, 200)
        assert 0 <= r["test_accuracy"] <= 100 and 0 <= r["best_val_accuracy"] <= 100
        assert 50 < r["noisy_label_precision"] < 70 and 30 < r["realised_noise_rate"] < 50
        final = r["final_confident"]
        assert 0 <= final["n_confident"] <= 1800
        assert 0 <= final["label_precision"] <= 100 and 0 <= final["label_recall"] <= 100
        assert r["wall_time_s"] > 0 and r["wall_time_s"] >= r["run_wall_time_s"] > 0
        for rec in r["rounds"]:
            assert 0 <= rec["n_confident"] <= 1800
            assert 0 <= rec["label_precision"] <= 100 and 0 <= rec["label_recall"] <= 100
    c1m = runs["clothing1m_mode"]
    assert c1m["schedule"]["milestones"] == [10, 20] and "true labels" in c1m["validation"]
    assert 0 <= c1m["assembled_test_accuracy"] <= 100
    assembled = out["assembled_predictor"]
    assert assembled["test_accuracy"] == c1m["test_accuracy"]
    assert assembled["assembled_test_accuracy"] == c1m["assembled_test_accuracy"]
    assert assembled["difference_points"] == round(c1m["assembled_test_accuracy"] - c1m["test_accuracy"], 2)
    assert assembled["helps"] == (assembled["difference_points"] > 0)


def test_ddp_scaling_launches_a_world_size_under_torchrun_and_reports_communication():
    out = _run_json(
        "benchmarks/ddp_scaling.py",
        "--device",
        "cpu",
        "--world-sizes",
        "2",
        "--examples",
        "512",
        "--repeats",
        "1",
        "--warmup-steps",
        "1",
        "--no-overhead",
    )
    (two,) = out["cases"]["lenet-fmnist"]["runs"]
    assert "error" not in two, two["error"]  # the launch's own output, when it failed
    assert (two["world_size"], two["ddp"], two["backend"], two["per_rank_batch"]) == (2, True, "gloo", 64)
    assert two["timed_steps"] == 4 and two["epoch_s"] > 0 and two["images_per_s"] > 0
    assert len(two["measured_s"]) == len(two["measured_no_sync_s"]) == 1 and two["communication_share"] < 1
    assert "scaling_efficiency" not in two  # world size 1 was not measured, so there is nothing to compare with


def test_graph_step_times_eager_and_recorded_steps_in_turn_and_checks_their_numbers():
    out = _run_json(
        "benchmarks/graph_step.py",
        "--device",
        "cpu",
        "--cases",
        "lenet",
        "--n",
        "384",
        "--repeats",
        "2",
        "--check-steps",
        "5",
    )
    case = out["cases"]["lenet"]
    assert len(case["measured_s"]["eager"]) == len(case["measured_s"]["graph"]) == 2
    assert case["graph"]["epoch_s"] == min(case["measured_s"]["graph"]) > 0
    assert case["graph"]["step_ms"] == round(1000 * case["graph"]["epoch_s"] / 3, 3)
    numbers = case["numbers"]  # on the CPU the recorded step is the eager one on fixed buffers
    assert numbers["recordings"] == 1 and numbers["identical"] and numbers["max_relative_parameter_difference"] == 0

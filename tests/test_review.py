"""memomentum review: the web application's safety (token, Host header, paths), the order it
shows, review.csv (format, atomic writes, a kill -9), the lock, and --export with the run
on the exported data (docs/review.md). The page in a real browser: test_review_browser.py."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, checkout_env
from review_helpers import CLASSES, Served, fake_image_run, image_folder, read_review
from starlette.testclient import TestClient

from memomentum.base.errors import InputError
from memomentum.cli import main
from memomentum.entrypoints.review import export
from memomentum.entrypoints.review.examples import Query
from memomentum.entrypoints.review.server import create_app
from memomentum.entrypoints.review.session import Review

TOKEN = "secret-token"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """The review caches examples.csv's columns under $XDG_CACHE_HOME: the test's own folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def run(tmp_path):
    folder = image_folder(tmp_path / "pets")
    columns = fake_image_run(tmp_path / "run", folder)
    return tmp_path / "run", folder, columns


@pytest.fixture
def client(run):
    review = Review([run[0]])
    yield TestClient(create_app(review, token=TOKEN, hosts={"testserver"}))
    review.close()


# -- safety -------------------------------------------------------------------------------

URLS = [
    "/",
    "/api/meta",
    "/api/examples",
    "/thumb/0",
    "/static/review.js",
    "/static/review.css",
    "/api/examples?suspects=1&limit=5",
]


def test_every_url_without_the_token_is_refused(client, run):
    for url in URLS + ["/thumb/" + str(run[2]["index"][0])]:
        assert client.get(url).status_code == 403, url
        assert client.get(url + ("&" if "?" in url else "?") + "token=wrong").status_code == 403, url
    for path in ("/api/decide", "/api/export"):
        r = client.post(path, json={"indices": [int(run[2]["index"][0])], "decision": "exclude"})
        assert r.status_code == 403
    assert not (run[0] / "review.csv").exists()


def test_the_token_or_the_pages_cookie_opens_every_url(client, run):
    first = int(run[2]["index"][0])
    assert client.get(f"/?token={TOKEN}").status_code == 200  # sets the cookie
    for url in URLS + [f"/thumb/{first}"]:
        if url != "/thumb/0" or 0 in run[2]["index"]:
            assert client.get(url).status_code == 200, url
    assert client.get(f"/thumb/{first}").headers["content-type"] == "image/jpeg"


def test_a_request_naming_another_host_is_refused(client):
    assert client.get(f"/api/meta?token={TOKEN}").status_code == 200
    for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example", ""):
        assert client.get(f"/api/meta?token={TOKEN}", headers={"Host": host}).status_code == 403, host


def test_nothing_but_the_runs_own_examples_is_served(client, run):
    _, _, columns = run
    client.get(f"/?token={TOKEN}")
    held_out = sorted(set(range(len(columns["index"]) + 3)) - set(columns["index"].tolist()))
    for path in (
        "/static/../config.json",
        "/static/%2e%2e/config.json",
        "/static/..%2fexamples.csv",
        "/thumb/../config.json",
        "/thumb/..%2f..%2fetc%2fpasswd",
        "/thumb/-1",
        "/thumb/99999",
        f"/thumb/{held_out[0]}",
        "/static/index.html",
        "/config.json",
        "/examples.csv",
        f"/thumb/{columns['files'][0]}",
        "/static/review.js/..",
    ):
        r = client.get(path)
        assert r.status_code == 404, path
        assert b"cat" not in r.content and b"dataset" not in r.content


def test_decisions_must_come_as_json(client, run):
    client.get(f"/?token={TOKEN}")
    r = client.post("/api/decide", data={"indices": "1", "decision": "exclude"})
    assert r.status_code == 415
    assert not (run[0] / "review.csv").exists()


# -- what the page shows ---------------------------------------------------------------------


def test_the_page_lists_suspects_first_in_label_quality_order(client, run):
    _, _, c = run
    client.get(f"/?token={TOKEN}")
    shown = client.get("/api/examples?limit=500").json()["items"]
    issue, quality = c["issue"].astype(bool), c["quality"]
    suspects = c["index"][issue][np.lexsort((c["index"][issue], quality[issue]))]
    others = c["index"][~issue][np.lexsort((c["index"][~issue], quality[~issue]))]
    assert [item["index"] for item in shown] == suspects.tolist() + others.tolist()
    only = client.get("/api/examples?suspects=1&limit=500").json()
    assert [item["index"] for item in only["items"]] == suspects.tolist() and only["total"] == issue.sum()
    qualities = [item["quality"] for item in only["items"]]
    assert qualities == sorted(qualities)


def test_filters_search_and_paging_run_on_the_server(client, run):
    _, _, c = run
    client.get(f"/?token={TOKEN}")
    cell = client.get("/api/examples?given=0&predicted=1&limit=500").json()
    want = np.flatnonzero((c["given"] == 0) & (c["predicted"] == 1))
    assert sorted(i["index"] for i in cell["items"]) == sorted(c["index"][want].tolist())
    assert all(i["given"] == "cat" and i["predicted"] == "dog" for i in cell["items"])
    page = client.get("/api/examples?offset=2&limit=3").json()
    assert [i["index"] for i in page["items"]] == [
        i["index"] for i in client.get("/api/examples?limit=5").json()["items"]
    ][2:5]
    name = Path(c["files"][4]).name
    found = client.get(f"/api/examples?q={name}").json()["items"]
    assert [i["file"] for i in found] == [name]
    client.post("/api/decide", json={"indices": [int(c["index"][4])], "decision": "keep"})
    decided = client.get("/api/examples?state=decided").json()
    assert [i["index"] for i in decided["items"]] == [int(c["index"][4])]
    assert client.get("/api/examples?state=undecided").json()["total"] == len(c["index"]) - 1
    assert client.get("/api/examples?limit=100000").status_code == 400


# -- review.csv --------------------------------------------------------------------------------


def test_review_csv_holds_every_decision_in_the_documented_format(client, run):
    run_dir, _, c = run
    client.get(f"/?token={TOKEN}")
    i = [int(v) for v in c["index"]]
    wrong = [k for k in range(len(i)) if c["issue"][k]]
    client.post("/api/decide", json={"indices": [i[wrong[0]]], "decision": "accept"})
    client.post("/api/decide", json={"indices": [i[1], i[2]], "decision": "exclude"})
    other = CLASSES[(c["given"][3] + 2) % 3]
    client.post("/api/decide", json={"indices": [i[3]], "decision": "relabel", "label": other})
    client.post("/api/decide", json={"indices": [i[5]], "decision": "relabel", "label": CLASSES[c["given"][5]]})
    rows = read_review(run_dir)
    with open(run_dir / "review.csv") as f:
        assert f.readline().strip() == "index,file,given_label,decision,label,decided_at"
    by = {int(r["index"]): r for r in rows}
    assert [int(r["index"]) for r in rows] == sorted(by)
    assert by[i[wrong[0]]]["decision"] == "relabel" and by[i[wrong[0]]]["label"] == CLASSES[c["predicted"][wrong[0]]]
    assert by[i[1]]["decision"] == "exclude" and by[i[1]]["label"] == ""
    assert by[i[3]]["decision"] == "relabel" and by[i[3]]["label"] == other
    assert by[i[5]]["decision"] == "keep" and by[i[5]]["label"] == CLASSES[c["given"][5]]  # relabel to itself
    assert by[i[1]]["file"] == c["files"][1] and by[i[1]]["given_label"] == CLASSES[c["given"][1]]
    assert all(len(r["decided_at"]) == 20 and r["decided_at"].endswith("Z") for r in rows)


def test_undo_restores_the_state_before(client, run):
    run_dir, _, c = run
    client.get(f"/?token={TOKEN}")
    i = int(c["index"][0])
    client.post("/api/decide", json={"indices": [i], "decision": "keep"})
    kept = read_review(run_dir)
    time.sleep(1.1)  # a second later: the undo must bring back the first decision's time
    r = client.post("/api/decide", json={"indices": [i], "decision": "exclude"}).json()
    assert r["before"] == [
        {"index": i, "decision": "keep", "label": CLASSES[c["given"][0]], "decided_at": kept[0]["decided_at"]}
    ]
    client.post("/api/decide", json={"restore": r["before"]})
    assert read_review(run_dir) == kept
    first = client.post("/api/decide", json={"restore": [{"index": i, "decision": None, "label": None}]})
    assert first.status_code == 200 and read_review(run_dir) == []


def test_a_reopened_review_shows_every_decision(run):
    run_dir, _, c = run
    review = Review([run_dir])
    review.decide({"indices": [int(c["index"][0]), int(c["index"][1])], "decision": "exclude"})
    review.close()
    again = Review([run_dir])
    assert again.decisions.counts()["exclude"] == 2
    assert again.item(0)["decision"] == "exclude"
    again.close()


def test_a_failed_write_leaves_review_csv_as_it_was(run, monkeypatch):
    run_dir, _, c = run
    review = Review([run_dir])
    review.decide({"indices": [int(c["index"][0])], "decision": "keep"})
    before = (run_dir / "review.csv").read_bytes()

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left on device"):
        review.decide({"indices": [int(c["index"][1])], "decision": "exclude"})
    monkeypatch.undo()
    review.close()
    assert (run_dir / "review.csv").read_bytes() == before
    assert sorted(p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")) == []


KILLED_WRITER = """
import sys
from pathlib import Path
from memomentum.entrypoints.review.session import Review
review = Review([Path(sys.argv[1])], lock=False)
for k, i in enumerate(review.ex.index.tolist() * 50):
    review.decide({"indices": [i], "decision": ("keep", "exclude")[k % 2]})
    print(k, flush=True)
"""


def test_a_kill_9_loses_at_most_the_decision_in_flight(run):
    run_dir = run[0]
    env = checkout_env(OMP_NUM_THREADS="1")
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(run_dir)], stdout=subprocess.PIPE, text=True, env=env
    )
    done = -1
    for line in child.stdout:
        done = int(line)
        if done >= 40:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    rows = read_review(run_dir)  # a complete file: every row whole
    n = len(run[2]["index"])
    assert len(rows) == n  # 40 decisions over n examples: each decided
    assert all(r["decision"] in ("keep", "exclude") for r in rows)
    Review([run_dir], lock=False)  # and it reads back


def test_a_hand_written_review_csv_that_does_not_fit_is_refused_in_one_sentence(run):
    run_dir, _, c = run
    (run_dir / "review.csv").write_text(f"index,decision,label\n{int(c['index'][0])},relabel,wolf\n")
    with pytest.raises(InputError, match=r"line 2 relabels to 'wolf', which is not one of the run's classes"):
        Review([run_dir], lock=False)
    (run_dir / "review.csv").write_text("index,decision,label\n99999,keep,\n")
    with pytest.raises(InputError, match="does not hold"):
        Review([run_dir], lock=False)
    (run_dir / "review.csv").write_text(f"index,decision,label\n{int(c['index'][0])},delete,\n")
    with pytest.raises(InputError, match="allowed: relabel, keep, exclude"):
        Review([run_dir])
    assert not (run_dir / "review.lock").exists()  # refused, and the lock let go


# -- the command -------------------------------------------------------------------------------


def test_a_second_review_of_the_same_run_is_refused(run, capsys):
    served = Served(run[0])
    try:
        assert main(["review", str(run[0]), "--no-browser"]) == 2
        err = capsys.readouterr().err.strip()
        assert (
            err.startswith(
                f"memomentum: error: {run[0]} is already open in another memomentum review (process "
                f"{served.proc.pid} on "
            )
            and "\n" not in err
        )
    finally:
        served.stop()
    assert served.proc.returncode == 0  # stopped cleanly: the lock is gone
    assert not (run[0] / "review.lock").exists()


def test_the_command_line_loads_no_web_framework_until_review_is_called():
    code = (
        "import sys, memomentum.cli, memomentum.entrypoints.review; "
        "print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=checkout_env(),
        check=True,
    ).stdout
    assert out.strip() == "[]"


def test_the_review_server_loads_no_torch_for_a_run_with_class_names():
    # torch takes seconds to import; the review of a run with classes.json never needs it
    code = (
        "import sys, memomentum.entrypoints.review.session, memomentum.entrypoints.review.server; "
        "print(sorted(m for m in ('torch',) if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=checkout_env(),
        check=True,
    ).stdout
    assert out.strip() == "[]"


def test_review_without_the_extra_says_how_to_install_it(run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "starlette", None)
    assert main(["review", str(run[0]), "--no-browser"]) == 2
    assert capsys.readouterr().err.strip() == (
        'memomentum: error: memomentum review needs starlette, which is not installed; pip install "memomentum[review]"'
    )


def test_host_0_0_0_0_prints_a_warning(run):
    env = checkout_env(OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "memomentum", "review", str(run[0]), "--no-browser", "--port", "0", "--host", "0.0.0.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        err = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert err.startswith("memomentum: warning: --host 0.0.0.0 lets other machines reach this review")


# -- export --------------------------------------------------------------------------------------


def test_export_of_an_image_folder_writes_file_label_with_the_decisions(run, tmp_path):
    run_dir, folder, c = run
    i = [int(v) for v in c["index"]]
    (run_dir / "review.csv").write_text(
        "index,decision,label\n"
        f"{i[0]},relabel,{CLASSES[(c['given'][0] + 1) % 3]}\n"
        f"{i[1]},exclude,\n{i[2]},keep,{CLASSES[c['given'][2]]}\n"
    )
    before = sorted((p.relative_to(folder), p.stat().st_mtime_ns) for p in folder.rglob("*"))
    line = export(run_dir, tmp_path / "out" / "clean.csv")
    assert "1 label corrected and 1 example excluded by review" in line
    with open(tmp_path / "out" / "clean.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    from memomentum.data.folders import read_image_folder

    listed = read_image_folder(folder).train
    assert len(rows) == len(listed.paths) - 1
    labels = {r["file"]: r["label"] for r in rows}
    assert c["files"][1] not in labels
    assert labels[c["files"][0]] == CLASSES[(c["given"][0] + 1) % 3]
    for path, k in zip(listed.paths, listed.labels):
        if path not in (c["files"][0], c["files"][1]):
            assert labels[path] == CLASSES[k]
    with open(tmp_path / "out" / "clean.corrections.csv", newline="") as f:
        corrections = list(csv.DictReader(f))
    assert [(r["where"], r["old_label"], r["new_label"], r["decision"]) for r in corrections] == [
        (c["files"][0], CLASSES[c["given"][0]], CLASSES[(c["given"][0] + 1) % 3], "relabel"),
        (c["files"][1], CLASSES[c["given"][1]], "", "exclude"),
    ]
    assert sorted((p.relative_to(folder), p.stat().st_mtime_ns) for p in folder.rglob("*")) == before


def test_export_of_arrays_given_in_memory_is_refused(run, tmp_path):
    run_dir = run[0]
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "dataset": "arrays"}))
    with pytest.raises(InputError, match="trained on arrays given in memory, which cannot be read again"):
        export(run_dir, tmp_path / "clean.npz")


def test_export_never_writes_over_the_runs_files(run):
    run_dir = run[0]
    for name in ("examples.csv", "review.csv"):
        with pytest.raises(InputError, match=f"would write over the run's own {name}"):
            export(run_dir, run_dir / name)


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A real run on a small CSV table with text labels (a few epochs)."""
    root = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(1)
    n = 150
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)) + y[:, None] * 1.5
    with open(root / "t.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["a", "b", "c", "d", "note", "label"])
        for r in range(n):
            w.writerow([f"{v:.3f}" for v in x[r]] + [f"row {r}", CLASSES[y[r]]])
    out = root / "run"
    assert (
        main(
            [
                "run",
                "--dataset",
                str(root / "t.csv"),
                "--out",
                str(out),
                "--epochs",
                "3",
                "--max-outer-loop",
                "1",
                "--max-inner-loop",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    return root, out


def test_export_of_a_csv_table_changes_labels_drops_excluded_rows_and_keeps_the_input(table_run, tmp_path):
    root, run_dir = table_run
    with open(run_dir / "examples.csv", newline="") as f:
        ex = list(csv.DictReader(f))
    a, b = ex[0], ex[1]
    new = CLASSES[(CLASSES.index(a["given_label"]) + 1) % 3]
    (run_dir / "review.csv").write_text(
        f"index,given_label,decision,label,decided_at\n"
        f"{a['index']},{a['given_label']},relabel,{new},2026-01-01T00:00:00Z\n"
        f"{b['index']},{b['given_label']},exclude,,2026-01-01T00:00:00Z\n"
    )
    source = (root / "t.csv").read_bytes()
    try:
        assert main(["review", str(run_dir), "--export", str(tmp_path / "clean.csv")]) == 0
    finally:
        (run_dir / "review.csv").unlink()
    assert (root / "t.csv").read_bytes() == source
    lines = source.decode().splitlines()
    out = (tmp_path / "clean.csv").read_text().splitlines()
    want = lines[:]
    fields = want[1 + int(a["row"])].split(",")
    want[1 + int(a["row"])] = ",".join(fields[:-1] + [new])
    del want[1 + int(b["row"])]
    assert out == want  # every other value as the text it was
    corrections = (tmp_path / "clean.corrections.csv").read_text().splitlines()
    assert corrections == [
        "index,where,old_label,new_label,decision",
        f"{a['index']},{a['row']},{a['given_label']},{new},relabel",
        f"{b['index']},{b['row']},{b['given_label']},,exclude",
    ]


def test_export_refuses_to_write_over_the_runs_input(table_run):
    root, run_dir = table_run
    with pytest.raises(InputError, match=f"would write over the run's input {root / 't.csv'}"):
        export(run_dir, root / "t.csv")


def test_a_run_on_an_export_says_how_many_labels_review_corrected(table_run, tmp_path, capsys):
    _, run_dir = table_run
    with open(run_dir / "examples.csv", newline="") as f:
        ex = list(csv.DictReader(f))[:5]
    other = {e["index"]: CLASSES[(CLASSES.index(e["given_label"]) + 1) % 3] for e in ex}
    (run_dir / "review.csv").write_text(
        "index,decision,label\n"
        + "".join(f"{e['index']},relabel,{other[e['index']]}\n" for e in ex[:3])
        + f"{ex[3]['index']},exclude,\n"
        f"{ex[4]['index']},keep,\n"
    )
    try:
        export(run_dir, tmp_path / "clean.parquet")
    finally:
        (run_dir / "review.csv").unlink()
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "clean.parquet")) == 149
    out = tmp_path / "again"
    capsys.readouterr()
    assert (
        main(
            [
                "run",
                "--dataset",
                str(tmp_path / "clean.parquet"),
                "--out",
                str(out),
                "--epochs",
                "2",
                "--max-outer-loop",
                "1",
                "--max-inner-loop",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "3 labels corrected, 1 example excluded by review" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["review"] == {
        "corrected": 3,
        "excluded": 1,
        "corrections_file": str(tmp_path / "clean.corrections.csv"),
    }
    assert 'labels corrected / excluded by review</td><td class="t">3 / 1</td>' in (out / "report.html").read_text()


def test_export_of_an_npz_changes_y_and_leaves_out_the_excluded(tmp_path):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 90)
    x = (rng.integers(0, 40, (90, 8, 8)) + y[:, None, None] * 70).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=x[:10], y_test=y[:10])
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--dataset",
                str(tmp_path / "d.npz"),
                "--out",
                str(run_dir),
                "--epochs",
                "2",
                "--batch-size",
                "16",
                "--max-outer-loop",
                "1",
                "--max-inner-loop",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    with open(run_dir / "examples.csv", newline="") as f:
        ex = list(csv.DictReader(f))
    a, b = int(ex[0]["index"]), int(ex[1]["index"])
    (run_dir / "review.csv").write_text(f"index,decision,label\n{a},relabel,{(y[a] + 1) % 3}\n{b},exclude,\n")
    export(run_dir, tmp_path / "clean.npz")
    with np.load(tmp_path / "clean.npz") as z:
        keep = np.arange(90) != b
        want = y.copy()
        want[a] = (y[a] + 1) % 3
        assert np.array_equal(z["y"], want[keep])
        assert np.array_equal(z["x"][..., 0], x[keep])  # stored (N, H, W, 1), as the run read it
        assert np.array_equal(z["y_test"], y[:10])


# -- several runs -----------------------------------------------------------------------------


def test_several_runs_are_ranked_by_their_consensus(tmp_path):
    from memomentum.entrypoints.consensus import consensus_table

    folder = image_folder(tmp_path / "pets")
    runs = [tmp_path / f"run{s}" for s in range(3)]
    for seed, run_dir in enumerate(runs):
        fake_image_run(run_dir, folder, seed=seed)
    review = Review(runs)
    try:
        client = TestClient(create_app(review, token=TOKEN, hosts={"testserver"}))
        client.get(f"/?token={TOKEN}")
        assert client.get("/api/meta").json()["consensus"] is True
        shown = client.get("/api/examples?limit=500").json()["items"]
        table = consensus_table(runs)
        suspect = table["issue_share"] >= 0.5
        want = np.concatenate([table["index"][suspect], table["index"][~suspect]])
        assert [i["index"] for i in shown] == want.tolist()  # within each part: the consensus's own order
        by = {i["index"]: i for i in shown}
        for k in range(table["index"].size):
            item = by[int(table["index"][k])]
            assert item["share"] == round(float(table["issue_share"][k]), 3)
            assert item["predicted"] == str(table["majority_label"][k])
        client.post("/api/decide", json={"indices": [int(want[0])], "decision": "exclude"})
        assert read_review(runs[0])[0]["index"] == str(want[0])  # decisions go to the first run
    finally:
        review.close()


def test_several_runs_on_other_data_are_refused(tmp_path):
    fake_image_run(tmp_path / "a", image_folder(tmp_path / "pets"))
    fake_image_run(tmp_path / "b", image_folder(tmp_path / "other", per_class=5))
    with pytest.raises(InputError):
        Review([tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a" / "review.lock").exists()


def test_the_columns_cached_for_the_next_opening_are_those_of_examples_csv(run):
    from memomentum.entrypoints.review.examples import cache_file, read_examples

    run_dir = run[0]
    parsed = read_examples(run_dir)
    assert cache_file(run_dir / "examples.csv").is_file()
    cached = read_examples(run_dir)
    for name in ("index", "given", "predicted", "confidence", "issue", "quality", "rank"):
        assert np.array_equal(getattr(cached, name), getattr(parsed, name)), name
        assert getattr(cached, name).dtype == getattr(parsed, name).dtype, name
    assert list(np.asarray(cached.files)) == list(np.asarray(parsed.files)) == run[2]["files"]
    text = (run_dir / "examples.csv").read_text()
    first = text.splitlines()[1].split(",")
    changed = CLASSES[(CLASSES.index(first[1]) + 1) % 3]
    (run_dir / "examples.csv").write_text(text.replace(",".join(first), ",".join([first[0], changed] + first[2:]), 1))
    st = (run_dir / "examples.csv").stat()
    os.utime(run_dir / "examples.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a run written again
    assert read_examples(run_dir).given[0] == CLASSES.index(changed)
    assert len(list(cache_file(run_dir / "examples.csv").parent.glob("*.arrow"))) == 1  # the old cache is gone


def test_the_speed_benchmark_times_opening_pages_and_thumbnails(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "benchmarks/review_speed.py",
            "--n",
            "3000",
            "--repeats",
            "1",
            "--thumbs",
            "3",
            "--work-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n_examples"] == 3000 and 0 < out["n_suspects"] < 3000
    for key in ("open_first_time_s", "open_s", "first_page_s", "command_to_first_page_s", "decision_s"):
        assert out[key] > 0, key
    assert set(out["filtered_page_s"]) >= {"cell_given_3_predicted_7", "undecided_suspects", "search_first"}
    assert out["thumbnail_s"]["cold_median"] > 0


def test_a_table_run_shows_each_examples_row_of_the_table(table_run):
    root, run_dir = table_run
    review = Review([run_dir], lock=False)
    page = review.page(Query(limit=10))
    lines = (root / "t.csv").read_text().splitlines()
    assert review.meta()["feature_columns"] == ["a", "b", "c", "d", "note"]  # every column but the label
    for item in page["items"]:
        fields = lines[1 + item["row"]].split(",")
        assert item["features"] == [float(v) for v in fields[:4]] + [fields[4]]
    assert review.view.thumbnail(0) is None


def test_an_array_run_shows_its_images_enlarged(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 90)
    x = (rng.integers(0, 40, (90, 8, 8)) + y[:, None, None] * 70).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--dataset",
                str(tmp_path / "d.npz"),
                "--out",
                str(run_dir),
                "--epochs",
                "1",
                "--batch-size",
                "16",
                "--max-outer-loop",
                "1",
                "--max-inner-loop",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    review = Review([run_dir], lock=False)
    assert review.view.kind == "images"
    png = Image.open(io.BytesIO(review.view.thumbnail(3)))
    assert png.size == (160, 160)  # 8 x 8 enlarged 20 times, each pixel kept sharp
    pixels = np.asarray(png.convert("L"))[::20, ::20].astype(int)
    scaled = x[int(review.ex.index[3])].astype(int) * 255 // x.max()
    assert np.array_equal(pixels, scaled)

"""``memomentum review RUN_DIR --export OUT``: the run's data with the review's decisions
applied, in the form the run read them, and beside ``OUT`` its corrections file.

* a table (``.csv``, ``.parquet``): the same table with the label column changed where the
  review relabelled a row and the excluded rows left out (a CSV to a CSV keeps every other
  value as the text it was);
* image files (an image folder, an image table, Clothing1M and the other releases): a CSV
  of ``file,label`` (absolute paths), with ``split`` = ``test`` rows for a test part;
  ``memomentum run --dataset OUT`` reads it as a table of images;
* arrays (an ``.npz`` file, a built-in benchmark): an ``.npz`` with ``x``, ``y`` (the run's
  labels, its synthetic noise included, with the decisions applied) and the test part.

Rows the review did not decide keep their label; the validation part (not in
``examples.csv``) keeps its own. The corrections file (:mod:`memomentum.data.corrections`)
lists only the changed rows, old and new label, and tells a later run on ``OUT`` how many
labels the review corrected and excluded. Nothing is written over the run's input.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ...base.atomic import atomic_file
from ...base.checks import counted
from ...base.errors import InputError
from ...data.corrections import COLUMNS, corrections_path
from ...runner import outputs
from ...runner.files import RUN_FILES
from .decisions import DECISIONS, REVIEW, Decisions
from .examples import Examples, read_examples
from .sources import data_path, run_config

SUFFIXES = {"table": (".csv", ".parquet"), "files": (".csv",), "arrays": (".npz",)}


def export(run_dir, out) -> str:
    """Write the exported data to ``out`` and its corrections file; return the line to print."""
    run_dir = Path(run_dir).expanduser()
    ex = read_examples(run_dir)
    config = run_config(run_dir)
    decisions = Decisions(ex, run_dir / REVIEW)
    return export_decided(ex, decisions, config, out)


def export_decided(ex: Examples, decisions: Decisions, config: dict, out) -> str:
    kind = "files" if ex.files is not None else "table" if ex.rows is not None else "arrays"
    out = _checked_out(Path(out).expanduser(), kind, ex, config)
    relabel = decisions.code == DECISIONS.index("relabel")
    exclude = decisions.code == DECISIONS.index("exclude")
    labels = np.where(relabel, decisions.label, ex.given)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        n = {"table": _export_table, "files": _export_files, "arrays": _export_arrays}[kind](
            ex, config, out, labels, relabel, exclude
        )
        corrections = corrections_path(out)
        outputs.write_text(corrections, _corrections(ex, relabel, exclude, labels))
    except OSError as e:
        raise InputError(f"cannot write {out}: {e.strerror or e}") from None
    return (
        f"exported {n} examples of {ex.run_dir} to {out}: {counted(int(relabel.sum()), 'label')} corrected and "
        f"{counted(int(exclude.sum()), 'example')} excluded by review (listed in {corrections})"
    )


def _checked_out(out: Path, kind: str, ex: Examples, config: dict) -> Path:
    if config.get("dataset") == "arrays":
        raise InputError(
            f"the run in {ex.run_dir} trained on arrays given in memory, which cannot be read again; "
            f"apply {REVIEW} to your arrays yourself"
        )
    allowed = SUFFIXES[kind]
    if not out.name.lower().endswith(allowed):
        what = {"table": "a table", "files": "image files", "arrays": "arrays"}[kind]
        raise InputError(
            f"--export {out}: a run on {what} exports a {' or '.join(allowed)} file; end the name in "
            f"{' or '.join(allowed)}"
        )
    if out.is_dir():
        raise InputError(f"--export {out} is a directory; give the path of the file to write")
    source = data_path(config)
    for target in (out, corrections_path(out)):
        if source is not None and target.resolve() == source:
            raise InputError(f"--export {out} would write over the run's input {source}; choose another name")
        if target.resolve().parent == ex.run_dir.resolve() and target.name in RUN_FILES | {REVIEW}:
            raise InputError(f"--export {out} would write over the run's own {target.name}; choose another name")
    return out


def _need_source(config: dict, run_dir: Path) -> Path:
    source = data_path(config)
    if source is None:
        raise InputError(
            f"the data of the run in {run_dir} ({config.get('dataset')}) cannot be found any more; "
            f"export needs them where the run read them"
        )
    return source


def _export_table(ex, config, out, labels, relabel, exclude) -> int:
    from ...data.tables import read_frame

    source = _need_source(config, ex.run_dir)
    as_text = not source.name.lower().endswith(".parquet") and out.name.lower().endswith(".csv")
    frame = read_frame(source, as_text=as_text)
    if len(frame) <= int(ex.rows.max()):
        raise InputError(
            f"{source} has {len(frame)} rows, fewer than when the run read it; export needs the table "
            f"as the run read it"
        )
    wanted = str(config.get("label_column") or "label")
    column = next((c for c in frame.columns if str(c).strip() == wanted), None)
    if column is None:
        raise InputError(f"{source} has no column {wanted!r} any more; export needs the table as the run read it")
    values = [ex.classes[k] for k in labels[relabel]]
    if not as_text and frame[column].dtype.kind in "iuf":  # a numeric label column stays numeric
        values = [float(v) if frame[column].dtype.kind == "f" else int(float(v)) for v in values]
    frame[column] = frame[column].astype(object)
    frame.iloc[ex.rows[relabel], frame.columns.get_loc(column)] = values
    frame = frame.drop(frame.index[ex.rows[exclude]])
    buf = io.BytesIO()
    if out.name.lower().endswith(".parquet"):
        frame.to_parquet(buf, index=False)
    else:
        frame.to_csv(buf, index=False, lineterminator="\n")
    with atomic_file(out, "wb") as f:
        f.write(buf.getbuffer())
    return len(frame)


def _export_files(ex, config, out, labels, relabel, exclude) -> int:
    from ...data.loading import load_image_files

    files = load_image_files(
        str(config["dataset"]),
        data_dir=config.get("data_dir"),
        image_size=config.get("image_size"),
        train_set=config.get("train_set") or "noisy",
        label_column=config.get("label_column") or "label",
        cache_dir=config.get("cache_dir"),
    )
    if files is None:  # the run's dataset no longer names image files (moved, replaced)
        raise InputError(f"{config['dataset']} no longer names the image files the run read; cannot export its labels")
    paths = np.asarray(files.train.paths, dtype=object)
    if paths.size <= int(ex.index.max()) or not np.array_equal(paths[ex.index], ex.files):
        raise InputError(
            f"the image files of {config['dataset']} are not those the run in {ex.run_dir} read (files "
            f"added, removed or renamed since); export needs the data as the run read them"
        )
    names = list(files.class_names)
    train_labels = [names[k] for k in files.train.labels]
    for pos in np.flatnonzero(relabel).tolist():
        train_labels[int(ex.index[pos])] = ex.classes[labels[pos]]
    dropped = set(ex.index[exclude].tolist())
    rows = [(p, lab, "train") for j, (p, lab) in enumerate(zip(paths.tolist(), train_labels)) if j not in dropped]
    if files.test is not None:
        rows += [(p, names[k], "test") for p, k in zip(files.test.paths, files.test.labels)]
    with atomic_file(out) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["file", "label"] + (["split"] if files.test is not None else []))
        w.writerows(r if files.test is not None else r[:2] for r in rows)
    return len(rows)


def _export_arrays(ex, config, out, labels, relabel, exclude) -> int:
    from ...config import RunConfig
    from ...data.arrays import load_array_dataset
    from ...runner.prepare import prepare_data

    cfg = RunConfig.from_dict({**config, "progress": False})
    ds = load_array_dataset(cfg.dataset, data_dir=cfg.data_dir)
    y = prepare_data(cfg, ds).noisy_labels.copy()  # the run's labels, its synthetic noise made again
    if not np.array_equal(y[ex.index], ex.given):
        raise InputError(
            f"the labels of {cfg.dataset} made again are not those the run in {ex.run_dir} trained on; "
            f"export needs the data as the run read them"
        )
    y[ex.index[relabel]] = labels[relabel]
    keep = np.ones(y.size, dtype=bool)
    keep[ex.index[exclude]] = False
    arrays = {"x": np.asarray(ds.x_train)[keep], "y": y[keep]}
    if ds.x_test is not None and ds.y_test is not None:
        arrays.update(x_test=np.asarray(ds.x_test), y_test=np.asarray(ds.y_test))
    outputs.write_npz(out, arrays)
    return int(keep.sum())


def _corrections(ex: Examples, relabel: np.ndarray, exclude: np.ndarray, labels: np.ndarray) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    where = ex.files if ex.files is not None else ex.rows if ex.rows is not None else ex.index
    for pos in np.flatnonzero(relabel | exclude).tolist():
        new = "" if exclude[pos] else ex.classes[labels[pos]]
        w.writerow(
            [int(ex.index[pos]), where[pos], ex.classes[ex.given[pos]], new, "exclude" if exclude[pos] else "relabel"]
        )
    return buf.getvalue()

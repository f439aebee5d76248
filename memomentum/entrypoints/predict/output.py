"""Where predictions go: ``--out`` checked before any work, and the predictions file written.

``--out`` is a ``.csv`` or ``.parquet`` file outside every run directory (one holding
``summary.json``, ``checkpoint.pt`` or ``run.lock``) and is not the data predicted. The file
(its columns are :class:`~..predictor.Predictor`'s to choose) is written atomically
(:func:`~...base.atomic.atomic_file`), its floats as ``examples.csv`` writes them (six
decimals) in a CSV.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ...base.atomic import atomic_file
from ...base.errors import InputError
from ...data.registry import is_table_folder
from ...runner.files import CHECKPOINT, LOCK, RUN_FILES, SUMMARY

__all__ = ["OUT_SUFFIXES", "check_out", "write"]

OUT_SUFFIXES = (".csv", ".parquet")


def check_out(out: str, run_dir: Path, inputs: list[str | os.PathLike]) -> Path:
    """``out`` as the path to write, or one sentence on why predictions cannot go there
    (``inputs``: the paths given as the data)."""
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise InputError(f"--out must be the path of the file to write (.csv or .parquet), got {out!r}")
    path = Path(out).expanduser()
    if not path.name.lower().endswith(OUT_SUFFIXES):
        raise InputError(
            f"--out {out}: predictions are written as a .csv or .parquet file; end the file name in one of them"
        )
    if path.resolve().parent == run_dir.resolve() and path.name in RUN_FILES:
        raise InputError(f"--out {out} is one of the run's own files; choose another --out")
    if path.is_dir():
        raise InputError(f"--out {out} is a directory; give the path of the file to write")
    _refuse_input_as_out(out, path, inputs)
    _refuse_out_in_run_dir(out, path)
    if path.name.lower().endswith(".parquet"):
        from ...data.tables import import_pandas

        import_pandas(out)
        try:
            import pyarrow  # noqa: F401 -- pandas' parquet engine
        except ImportError:
            raise InputError(
                f'writing {out} needs pyarrow, which is not installed; pip install "memomentum[tables]"'
            ) from None
    return path


def _refuse_input_as_out(out: str, path: Path, inputs: list[str | os.PathLike]) -> None:
    """--out must not be the data predicted (the same path, another spelling, a link to it),
    nor lie inside a table given as a folder of parquet shards, where it would become a
    shard of the table."""
    resolved = path.resolve()
    for given in inputs:
        source = Path(str(given).strip()).expanduser()
        if resolved == source.resolve() or (path.exists() and source.exists() and os.path.samefile(path, source)):
            raise InputError(
                f"--out {out} is the file given to --dataset; writing there would overwrite the input, "
                f"so choose another --out"
            )
        if source.is_dir() and is_table_folder(str(source)) and source.resolve() in resolved.parents:
            raise InputError(
                f"--out {out} lies inside the table {given} given to --dataset, where it would be read "
                f"as part of the table next time; choose another --out"
            )


def _refuse_out_in_run_dir(out: str, path: Path) -> None:
    """--out must not lie in a run directory (one holding summary.json, checkpoint.pt or
    run.lock; the predicting run's too): it would overwrite the run's files, or add a file
    that --overwrite and the report do not expect; nor below a file, where it cannot go."""
    for folder in path.resolve().parents:
        if _is(folder, "exists") and not _is(folder, "is_dir"):
            raise InputError(f"--out {out} cannot be written: {folder} is a file, not a folder; choose another --out")
        marker = next((name for name in (SUMMARY, CHECKPOINT, LOCK) if _is(folder / name, "is_file")), None)
        if marker is not None:
            raise InputError(
                f"--out {out} lies inside the run directory {folder} (it holds {marker}); predictions "
                f"are written outside run directories, so that no run's files are overwritten: choose "
                f"another --out"
            )


def _is(path: Path, test: str) -> bool:
    """``path.exists()`` / ``is_dir()`` / ``is_file()``, False where the folder cannot be
    looked into (a folder of another user): writing there fails later with its own reason."""
    try:
        return getattr(path, test)()
    except OSError:
        return False


def write(path: Path, cols: dict[str, list]) -> None:
    """The columns ``cols`` (name: one value per example, None where it has none) as the
    CSV or parquet file ``path``, atomically."""
    floats = {name for name in cols if name in ("confidence", "label_quality") or name.startswith("p_")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.lower().endswith(".parquet"):
            _write_parquet(path, cols)
            return
        with atomic_file(path) as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(list(cols))
            for row in zip(*cols.values()):
                w.writerow(["" if v is None else f"{v:.6f}" if name in floats else v for name, v in zip(cols, row)])
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None


def _write_parquet(path: Path, cols: dict[str, list]) -> None:
    import io

    import pandas as pd

    def whole(values) -> bool:  # a column of whole numbers with gaps: nullable integers, not floats
        return all(v is None or isinstance(v, int) for v in values) and None in values

    frame = pd.DataFrame(
        {
            name: pd.array(values, dtype="Int64") if name == "is_label_issue" or whole(values) else values
            for name, values in cols.items()
        }
    )
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    with atomic_file(path, "wb") as f:
        f.write(buf.getbuffer())

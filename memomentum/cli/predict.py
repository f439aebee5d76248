"""``memomentum predict``: classify new data with a finished run's best model, as the run predicts."""

from __future__ import annotations

from .parser import Parser


def add_parser(sub) -> Parser:
    pp = sub.add_parser(
        "predict",
        help="classify new data with a finished run's best model, exactly as the run "
        "predicts, and write one row per example (docs/predict.md)",
    )
    pp.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by memomentum run, finished")
    pp.add_argument(
        "--dataset",
        required=True,
        nargs="+",
        metavar="DATA",
        help="new data of the kind the run trained on: a table (.csv, .parquet) with the run's feature "
        "columns (matched by name), a folder of images (read in batches; class sub-folders give "
        "labels), image files, a .txt file listing image files, a table with an image column (.csv, "
        ".parquet, parquet shards; for a run on image files), or an .npz file (x, optional y)",
    )
    pp.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="the predictions: FILE.csv, or FILE.parquet; columns row (or file), predicted_label, "
        "confidence, and given_label, is_label_issue, label_quality where the data have labels",
    )
    pp.add_argument("--probabilities", action="store_true", help="add one column p_<class> per class")
    pp.add_argument(
        "--label-column",
        metavar="NAME",
        help="for a table: the column of given labels to compare with (default: the run's label column, "
        "when the table has it)",
    )
    pp.add_argument("--quiet", action="store_true", help="no progress bar")
    return pp


def command(args) -> int:
    from ..entrypoints.predictor import predict_to_file

    print(
        predict_to_file(
            args.run_dir,
            args.dataset,
            args.out,
            probabilities=args.probabilities,
            label_column=args.label_column,
            progress=not args.quiet,
        )
    )
    return 0

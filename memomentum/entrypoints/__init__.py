"""What a user calls: ``run()`` and ``find_label_issues()`` (api), the scikit-learn estimator, ``load()`` and
prediction, the report, grids of runs, mean ± std tables, consensus over runs and the review application.
The command line (``memomentum.cli``) is the same from the shell. Empty on purpose: ``memomentum.entrypoints.report``
loads without torch."""

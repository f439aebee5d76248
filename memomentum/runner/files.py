"""Every file name of a run directory, in one place. Imports nothing, so that the report
(which does not load torch) and the grid read the same names the run writes.

``summary.json`` is written last: its presence marks a finished run.
"""

CONFIG = "config.json"  # the resolved configuration
CHECKPOINT = "checkpoint.pt"  # the whole procedure state, rewritten after every epoch until the run ends
HISTORY = "history.csv"  # one row per epoch, growing with the checkpoint
SUMMARY = "summary.json"
EXAMPLES = "examples.csv"  # the verdict on every training example
ROUNDS = "rounds.npz"  # the confident set of every round
CLASSES = "classes.json"  # the class names, when the data has them
MODEL = "model.pt"  # the best model's weights, input shape and normalisation
REPORT = "report.html"
LOCK = "run.lock"
# --overwrite keeps the run it replaces here until the new run has results of its own: a new
# run that fails (diverges, cannot write) puts the old one back.
PREVIOUS = ".previous-run"

# What a run directory may hold; --overwrite deletes a directory only if it holds nothing else.
RUN_FILES = frozenset({CONFIG, CHECKPOINT, SUMMARY, EXAMPLES, HISTORY, MODEL, REPORT, ROUNDS, CLASSES, LOCK, PREVIOUS})
# Written at the end; removed again if one of them fails (history.csv stays: it grew with
# the checkpoint, and a resumed run rewrites it from there).
RESULT_FILES = (EXAMPLES, ROUNDS, CLASSES, MODEL, REPORT, SUMMARY)

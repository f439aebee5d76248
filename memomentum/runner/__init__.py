"""One run and its directory: the run as named steps, from prepared data to written results.

* :mod:`.pipeline`: :func:`run_pipeline`, the steps of one run;
* :mod:`.prepare`: data -> noise -> split, and the tensors the engine reads;
* :mod:`.results`: the final predictions, the summary and the result files;
* :mod:`.records`: the confident set of every round, checkpointed with the run;
* :mod:`.files`: every file name of a run directory (no torch);
* :mod:`.rundir`: the directory's lock, checks and resumption;
* :mod:`.outputs`: atomic writes; :mod:`.signals`: pausing on SIGINT/SIGTERM;
  :mod:`.progress`: the progress bar.

Importing this package loads nothing.
"""

"""The parts of ``memomentum predict`` around the predictor (:mod:`..predictor`): reading a
finished run (:mod:`.run`), reading new data with the run's own readers (:mod:`.inputs`),
and checking ``--out`` and writing the predictions file (:mod:`.output`)."""

"""Me-Momentum itself: the decision rules, the benchmark procedure (and the CE baseline),
the Clothing1M procedure, the per-example verdicts and the difficulty measurements.

* :mod:`.rules`: the pure rules both the procedures and the estimator's scikit-learn rounds use;
* :mod:`.procedure`: the benchmark mode's state machine (the reference ``main.py``);
* :mod:`.clothing1m`: the Clothing1M mode (the reference ``Clothing.py``);
* :mod:`.sklearn_rounds`: the same outer loops and rounds with a scikit-learn classifier (the estimator's);
* :mod:`.verdicts`: label issue, label quality and the ranking of suspects;
* :mod:`.difficulty`: when the first phase learns each example (``--track-difficulty``).
"""

"""The scikit-learn estimator: its contract (scikit-learn's own checks), its use inside
scikit-learn's tools, its three kinds of model, and the per-example verdict."""

import pickle
import sys
import warnings

import numpy as np
import pytest
import sklearn  # noqa: F401 - the sklearn extra (in the test extra too)
from helpers import SCHEDULE_2_EPOCHS, gaussian_blobs
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from memomentum import InputError
from memomentum.entrypoints.estimator import MeMomentumClassifier


def tiny_network(n_features, n_classes):
    """A user's own network, small enough for scikit-learn's ~55 checks to stay fast
    (a module-level function, so that the estimator pickles)."""
    return nn.Sequential(nn.Linear(n_features, 16), nn.ReLU(), nn.Linear(16, n_classes))


def noisy_blobs(n=600, k=3, noise=0.3, seed=0):
    return gaussian_blobs(n, k, 5, separation=4, noise=noise, flip_to="other", seed=seed)


QUICK = dict(**SCHEDULE_2_EPOCHS, device="cpu")


# scikit-learn's estimator checks, on both ways the estimator trains: a torch network through
# the package's procedure (a user's network factory: the named networks differ only in which
# network is built) and a scikit-learn model refitted in Me-Momentum's rounds. None is
# skipped or expected to fail; scikit-learn itself skips check_array_api_input unless
# SCIPY_ARRAY_API is set (this estimator does not claim array-API support).
@parametrize_with_checks(
    [
        MeMomentumClassifier(tiny_network, batch_size=16, lr=0.1, **QUICK),
        MeMomentumClassifier(
            DecisionTreeClassifier(max_depth=4), max_outer_loop=1, max_inner_loop=3, cv=2, random_state=0, n_jobs=1
        ),
    ]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_fit_predict_and_verdict_flag_mislabelled_examples():
    x, clean, noisy = noisy_blobs()
    names = np.array(["cat", "dog", "eel"])
    clf = MeMomentumClassifier(epochs=8, max_outer_loop=1, max_inner_loop=3, random_state=3, device="cpu")
    clf.fit(x, names[noisy])
    np.testing.assert_array_equal(clf.classes_, names)
    assert clf.n_features_in_ == 5
    v = clf.verdict_
    assert list(v.columns) == [
        "given_label",
        "predicted_label",
        "confidence",
        "is_label_issue",
        "label_quality",
        "is_confident",
    ]
    assert len(v) == len(x)
    np.testing.assert_array_equal(v["given_label"], names[noisy])  # the user's labels, not class numbers
    np.testing.assert_array_equal(v["is_label_issue"], v["predicted_label"] != names[noisy])
    np.testing.assert_array_equal(clf.confident_, ~v["is_label_issue"].to_numpy())
    assert np.all((v["confidence"] > 0) & (v["confidence"] <= 1))
    assert np.all((v["label_quality"] >= 0) & (v["label_quality"] <= 1))
    # the trusted examples are far cleaner than the labels as given
    kept = clf.confident_
    assert np.mean(noisy[kept] == clean[kept]) > np.mean(noisy == clean) + 0.2
    # the quality score ranks wrong labels below right ones
    wrong = noisy != clean
    assert v["label_quality"][wrong].mean() < v["label_quality"][~wrong].mean() - 0.3
    assert clf.score(x, names[clean]) > 0.9
    proba = clf.predict_proba(x[:7])
    assert proba.shape == (7, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(clf.predict(x[:7]), names[proba.argmax(1)])


def test_same_seed_same_verdict_and_pickled_model_predicts_the_same():
    x, _, noisy = noisy_blobs(n=300)
    a = MeMomentumClassifier(epochs=3, max_outer_loop=1, max_inner_loop=2, device="cpu").fit(x, noisy)
    b = MeMomentumClassifier(epochs=3, max_outer_loop=1, max_inner_loop=2, device="cpu").fit(x, noisy)
    np.testing.assert_array_equal(a.verdict_["predicted_label"], b.verdict_["predicted_label"])
    np.testing.assert_array_equal(a.verdict_["confidence"], b.verdict_["confidence"])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a)).predict_proba(x), a.predict_proba(x))


def test_sklearn_model_rounds_clean_the_training_set():
    """Any scikit-learn classifier gets Me-Momentum's rounds: each refits a clone on the
    confident set, picked by noisy-validation accuracy; ``method="ce"`` is one fit."""
    x, clean, noisy = noisy_blobs(n=400, noise=0.35)
    hgb = HistGradientBoostingClassifier(max_iter=20)
    with pytest.warns(FutureWarning, match="seed is deprecated"):  # the deprecated name still works
        clf = MeMomentumClassifier(hgb, max_outer_loop=2, max_inner_loop=3, seed=2, cv=3, threads=1).fit(x, noisy)
    assert clf.estimator_ is not hgb and not hasattr(hgb, "classes_")  # the user's model stays unfitted
    assert clf.estimator_.random_state == 2  # a clone without a random_state gets the seed
    rounds = clf.summary_["rounds"]
    assert rounds and {r["outer"] for r in rounds} == {1, 2}
    assert all(r["n_confident"] < len(x) for r in rounds)
    fits = clf.summary_["history"]
    assert clf.summary_["best_val_accuracy"] == max(h["val_accuracy"] for h in fits)
    kept = clf.confident_
    assert np.mean(noisy[kept] == clean[kept]) > np.mean(noisy == clean) + 0.2
    ce = MeMomentumClassifier(hgb, method="ce", threads=1).fit(x, noisy)
    assert ce.summary_["fits"] == 1 and ce.summary_["rounds"] == []


def test_a_model_without_predict_proba_gets_one_hot_probabilities():
    from sklearn.svm import LinearSVC

    x, _, noisy = noisy_blobs(n=200)
    clf = MeMomentumClassifier(LinearSVC(), max_outer_loop=1, max_inner_loop=2).fit(x, noisy)
    proba = clf.predict_proba(x)
    assert set(np.unique(proba)) == {0.0, 1.0} and np.all(proba.sum(1) == 1)


def test_works_in_pipeline_cross_val_score_and_grid_search():
    x, _, noisy = noisy_blobs(n=240)
    labels = np.array(["a", "b", "c"])[noisy]
    pipe = make_pipeline(StandardScaler(), MeMomentumClassifier(tiny_network, lr=0.1, **QUICK))
    scores = cross_val_score(pipe, x, labels, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)
    grid = GridSearchCV(MeMomentumClassifier(tiny_network, **QUICK), {"lr": [1e-4, 0.1]}, cv=2).fit(x, labels)
    assert grid.best_params_ == {"lr": 0.1}  # 1e-4 barely moves the network in two epochs
    assert set(grid.predict(x[:10])) <= set(labels)


def test_network_factory_builds_each_outer_loop_from_the_seed():
    calls = []

    def factory(n_features, n_classes):
        calls.append((n_features, n_classes))
        return tiny_network(n_features, n_classes)

    x, _, noisy = noisy_blobs(n=200)
    clf = MeMomentumClassifier(factory, epochs=2, max_outer_loop=2, max_inner_loop=2, device="cpu").fit(x, noisy)
    assert set(calls) == {(5, 3)} and len(calls) >= 3  # the check, two outer loops, the best model
    assert isinstance(clf.estimator_, nn.Sequential)
    again = MeMomentumClassifier(factory, epochs=2, max_outer_loop=2, max_inner_loop=2, device="cpu").fit(x, noisy)
    np.testing.assert_array_equal(clf.predict_proba(x), again.predict_proba(x))


@pytest.mark.parametrize(
    "model, message",
    [
        (lambda d, k: "not a network", "returned str, not a torch.nn.Module"),
        (lambda d, k: nn.Linear(d, k + 1), r"returns \(2, 4\) for a batch of 2; it must return \(2, 3\) logits"),
        (lambda d, k: nn.Linear(d + 1, k), "fails on a batch of the data"),
        (nn.Linear(5, 3), "network instance; pass a function"),
        (HistGradientBoostingClassifier, "is the class HistGradientBoostingClassifier; pass an instance"),
        (42, "model must be None, a model name, a scikit-learn classifier or a function"),
        ("transformer", "unknown model 'transformer'"),
    ],
)
def test_bad_models_are_refused_in_one_sentence(model, message):
    x, _, noisy = noisy_blobs(n=60)
    with pytest.raises(InputError, match=message):
        MeMomentumClassifier(model, **QUICK).fit(x, noisy)


def test_errors_follow_scikit_learn():
    x, _, noisy = noisy_blobs(n=100)
    with pytest.raises(NotFittedError):
        MeMomentumClassifier().predict(x)
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[100, 99\]"):
        MeMomentumClassifier().fit(x, noisy[:99])
    with pytest.raises(ValueError, match="Invalid parameter 'colour'"):
        MeMomentumClassifier().set_params(colour="red")
    with pytest.raises(ValueError, match="one class only"):
        MeMomentumClassifier(**QUICK).fit(x, np.full(100, "cat"))
    with pytest.raises(InputError, match="val-fraction must be between 0 and 1"):
        MeMomentumClassifier(val_fraction=1.5).fit(x, noisy)
    clf = MeMomentumClassifier(epochs=1, max_outer_loop=1, max_inner_loop=1, device="cpu").fit(x, noisy)
    with pytest.raises(ValueError, match="X has 3 features, but MeMomentumClassifier is expecting 5"):
        clf.predict(x[:, :3])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(bad)
    assert clf.get_params()["epochs"] == 1


def test_images_keep_working():
    rs = np.random.RandomState(0)
    y = np.repeat([0, 1], 40)
    x = (rs.rand(80, 14, 14) * 100 + 100 * y[:, None, None]).astype(np.uint8)
    clf = MeMomentumClassifier(model="lenet", threads=1, **QUICK).fit(x, np.array(["off", "on"])[y])
    assert clf.predict(x[:4]).tolist() == clf.verdict_["predicted_label"][:4].tolist()
    with pytest.raises(ValueError, match="shape"):
        clf.predict(x[:, :, :10])


def test_verdict_is_a_dict_of_columns_without_pandas(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    x, _, noisy = noisy_blobs(n=100)
    clf = MeMomentumClassifier(HistGradientBoostingClassifier(max_iter=5), max_outer_loop=1, threads=1).fit(x, noisy)
    assert isinstance(clf.verdict_, dict)
    assert {"given_label", "predicted_label", "confidence", "is_label_issue", "label_quality"} <= set(clf.verdict_)
    np.testing.assert_array_equal(clf.verdict_["given_label"], noisy)


def test_labels_mixing_text_and_numbers_are_refused_in_one_sentence():
    X = np.random.RandomState(0).rand(40, 3)
    y = np.array([1, "a"] * 20, dtype=object)
    with pytest.raises(InputError, match=r"y mixes text and numbers as labels \(for example 'a' and 1\)"):
        MeMomentumClassifier(epochs=1).fit(X, y)


@pytest.mark.parametrize("y", [[1, "a"] * 20, (1, "a") * 20, [np.int64(1), np.str_("a")] * 20])
def test_a_plain_list_mixing_numbers_and_text_is_refused_as_arrays_are(y):
    """numpy would turn [1, "a"] into text, and predict would answer '1' where the user gave 1."""
    X = np.random.RandomState(0).rand(40, 3)
    with pytest.raises(InputError) as e:
        MeMomentumClassifier(epochs=1).fit(X, y)
    assert str(e.value) == (
        "y mixes text and numbers as labels (for example 'a' and 1); give every label the same kind, e.g. all as text"
    )


@pytest.mark.parametrize(
    "y, message",
    [
        (
            [True, "a"] * 20,
            "y mixes text and True/False as labels (for example 'a' and True); give every label the same "
            "kind, e.g. all as text",
        ),
        (
            [0, 1, None, 1] * 10,
            "y has no label in row 2 (None); every example needs a label: leave out the rows without one",
        ),
        (
            np.array(["a", "b", np.nan, "a"] * 10, dtype=object),
            "y has no label in row 2 (nan); every example needs a label: leave out the rows without one",
        ),
    ],
)
def test_missing_labels_and_true_false_beside_text_are_refused_in_one_sentence(y, message):
    """scikit-learn called a missing label a regression target; numpy turned True into 'True'."""
    X = np.random.RandomState(0).rand(40, 3)
    with pytest.raises(InputError) as e:
        MeMomentumClassifier(epochs=1).fit(X, y)
    assert str(e.value) == message


@pytest.mark.parametrize("y, shown", [(np.array(["wolf"] * 40), "'wolf'"), (np.zeros(40, np.int64), "0")])
def test_messages_show_labels_as_the_user_wrote_them_not_numpys_reprs(y, shown):
    X = np.random.RandomState(0).rand(40, 3)
    with pytest.raises(InputError) as e:
        MeMomentumClassifier(epochs=1).fit(X, y)
    assert str(e.value) == f"y holds one class only ({shown}); at least two classes are needed"
    with pytest.raises(InputError, match=r"got 1\)?$"):
        MeMomentumClassifier(epochs=1, cv=np.int64(1)).fit(X, np.arange(40) % 2)


# -- scikit-learn's names: random_state (seed, deprecated) and n_jobs (threads) ----------------


def _proba(x, y, **params):
    return MeMomentumClassifier(tiny_network, **QUICK, **params).fit(x, y).predict_proba(x)


def test_random_state_seeds_the_run_and_none_is_the_fixed_default_seed():
    x, _, noisy = noisy_blobs(n=150, noise=0.3)
    default = _proba(x, noisy)
    np.testing.assert_array_equal(_proba(x, noisy, random_state=None), default)  # None is seed 1, not random
    np.testing.assert_array_equal(_proba(x, noisy, random_state=1), default)
    other = _proba(x, noisy, random_state=7)
    assert not np.array_equal(other, default)
    np.testing.assert_array_equal(_proba(x, noisy, random_state=np.int64(7)), other)


def test_seed_is_a_deprecated_alias_of_random_state():
    x, _, noisy = noisy_blobs(n=150, noise=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # random_state alone warns of nothing
        expected = _proba(x, noisy, random_state=5)
    message = "^seed is deprecated and will be removed in the next release; use random_state$"
    with pytest.warns(FutureWarning, match=message):
        np.testing.assert_array_equal(_proba(x, noisy, seed=5), expected)
    with pytest.warns(FutureWarning, match=message):  # both, the same value: allowed
        np.testing.assert_array_equal(_proba(x, noisy, seed=5, random_state=5), expected)
    # scikit-learn's deprecation pattern: seed is a parameter with a sentinel default, kept by clone
    assert MeMomentumClassifier().get_params()["seed"] == "deprecated"
    assert MeMomentumClassifier().get_params()["random_state"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # it warns in fit, not when made or cloned (scikit-learn's rule)
        assert clone(MeMomentumClassifier(seed=5)).get_params()["seed"] == 5
    assert MeMomentumClassifier().set_params(seed=4).seed == 4


@pytest.mark.parametrize(
    "params, message",
    [
        (
            dict(seed=2, random_state=3),
            r"^seed=2 and random_state=3 disagree; give random_state only \(seed is its "
            r"deprecated name\)$",
        ),
        (
            dict(random_state=np.random.RandomState(0)),
            r"^random_state must be None or a whole number in "
            r"0\.\.4294967295 \(a numpy RandomState or Generator is not "
            r"accepted: the run is seeded by a number\), got RandomState",
        ),
        (dict(random_state=-1), r"random_state must be None or a whole number in 0\.\.4294967295 .*, got -1$"),
        (dict(random_state=2**32), r"random_state must be .*, got 4294967296$"),
        (dict(random_state=1.0), r"random_state must be .*, got 1\.0$"),
        (dict(random_state=True), r"random_state must be .*, got True$"),
        (dict(seed="1"), r"^seed must be None or a whole number in 0\.\.4294967295 .*, got '1'$"),
    ],
)
def test_bad_or_disagreeing_seeds_are_refused_in_one_sentence(params, message):
    x, _, noisy = noisy_blobs(n=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # seed= warns first; the error is the point here
        with pytest.raises(InputError, match=message):
            MeMomentumClassifier(**QUICK, **params).fit(x, noisy)


def test_n_jobs_is_scikit_learns_name_for_threads(monkeypatch):
    import memomentum.entrypoints.estimator as estimator
    from memomentum.training import threads

    x, _, noisy = noisy_blobs(n=100)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    assert _fitted(x, noisy, n_jobs=-1).summary_["threads"] == 2  # every core
    assert _fitted(x, noisy, n_jobs=-2, threads=1).summary_["threads"] == 1  # all but one; agrees with threads
    assert _fitted(x, noisy, n_jobs=1).summary_["threads"] == 1
    limits = []  # a scikit-learn model's thread pools get the same count, in fit and predict
    real_limit = estimator._thread_limit
    monkeypatch.setattr(estimator, "_thread_limit", lambda n: limits.append(n) or real_limit(n))
    clf = MeMomentumClassifier(DecisionTreeClassifier(max_depth=2), max_outer_loop=1, n_jobs=-1).fit(x, noisy)
    clf.predict(x[:3])
    assert limits == [2, 2]
    assert MeMomentumClassifier().get_params()["n_jobs"] is None


def _fitted(x, y, **params):
    return MeMomentumClassifier(tiny_network, epochs=1, max_outer_loop=1, max_inner_loop=1, device="cpu", **params).fit(
        x, y
    )


@pytest.mark.parametrize(
    "params, message",
    [
        (
            dict(threads=1, n_jobs=2),
            r"^threads=1 and n_jobs=2 \(2 threads\) disagree; give one of them \(n_jobs is "
            r"threads' scikit-learn name\)$",
        ),
        (
            dict(n_jobs=0),
            r"^n_jobs must be None, a whole number of threads of at least 1, or -1 for every available "
            r"core, got 0$",
        ),
        (dict(n_jobs=1.5), r"n_jobs must be None, .*, got 1\.5$"),
        (dict(n_jobs=True), r"n_jobs must be None, .*, got True$"),
    ],
)
def test_bad_or_disagreeing_n_jobs_are_refused_in_one_sentence(params, message):
    x, _, noisy = noisy_blobs(n=60)
    with pytest.raises(InputError, match=message):
        MeMomentumClassifier(**QUICK, **params).fit(x, noisy)

"""The scikit-learn-style estimator on a practitioner's own arrays."""
import numpy as np
import pytest

from memomentum import InputError
from memomentum.estimator import MeMomentumClassifier


def noisy_blobs(n=600, k=3, noise=0.3, seed=0):
    rs = np.random.RandomState(seed)
    clean = rs.randint(0, k, n)
    x = rs.randn(n, 5).astype(np.float32) + 4 * np.eye(k, 5, dtype=np.float32)[clean]
    flip = rs.rand(n) < noise
    noisy = np.where(flip, (clean + 1 + rs.randint(0, k - 1, n)) % k, clean)
    return x, clean, noisy


def test_fit_predict_and_verdict_flag_mislabelled_examples():
    x, clean, noisy = noisy_blobs()
    clf = MeMomentumClassifier(epochs=8, max_outer_loop=1, max_inner_loop=3, seed=3).fit(x, noisy)
    assert clf.n_classes_ == 3
    v = clf.verdict_
    assert set(v) == {"given_label", "predicted_label", "confidence", "is_confident"}
    assert all(len(a) == len(x) for a in v.values())
    assert np.all((v["confidence"] > 0) & (v["confidence"] <= 1))
    np.testing.assert_array_equal(v["is_confident"], v["predicted_label"] == noisy)
    # the trusted examples are far cleaner than the labels as given
    assert np.mean(noisy[v["is_confident"]] == clean[v["is_confident"]]) > np.mean(noisy == clean) + 0.2
    assert clf.score(x, clean) > 0.9
    proba = clf.predict_proba(x[:7])
    assert proba.shape == (7, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(clf.predict(x[:7]), proba.argmax(1))


def test_same_seed_same_verdict():
    x, _, noisy = noisy_blobs(n=300)
    a = MeMomentumClassifier(epochs=3, max_outer_loop=1, max_inner_loop=2).fit(x, noisy)
    b = MeMomentumClassifier(epochs=3, max_outer_loop=1, max_inner_loop=2).fit(x, noisy)
    np.testing.assert_array_equal(a.verdict_["predicted_label"], b.verdict_["predicted_label"])
    np.testing.assert_array_equal(a.verdict_["confidence"], b.verdict_["confidence"])


def test_errors_are_one_sentence_input_errors():
    x, _, noisy = noisy_blobs(n=100)
    with pytest.raises(InputError, match="not fitted"):
        MeMomentumClassifier().predict(x)
    with pytest.raises(InputError, match="100 rows in x but 99 labels"):
        MeMomentumClassifier().fit(x, noisy[:99])
    with pytest.raises(InputError, match="unknown parameter"):
        MeMomentumClassifier().set_params(colour="red")
    clf = MeMomentumClassifier(epochs=1, max_outer_loop=1, max_inner_loop=1).fit(x, noisy)
    with pytest.raises(InputError, match="shape"):
        clf.predict(x[:, :3])
    assert clf.get_params()["epochs"] == 1

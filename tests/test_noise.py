"""Noise generators: bit-for-bit equality with the reference implementation.

The slow loops below are *oracles*: they restate, example by example, what the authors'
reference code (``common/noisy_util.py``) does, so that the vectorised generators can be
checked against them on many random inputs. They live only here, never in the package.
"""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import FASHION, fixture_file, require_fashion_mnist
from scipy import stats

from memomentum.base.errors import InputError
from memomentum.noise import flips, instance
from memomentum.noise.files import read_labels, write_labels
from memomentum.noise.labels import NOISE_TYPES, NoisyLabels, make_noisy_labels, transition_matrix

# --------------------------------------------------------------------------------------
# Oracles: the reference's per-example loops
# --------------------------------------------------------------------------------------


def oracle_matrix_noise(labels, matrix, seed):
    """Reference ``multiclass_noisify``: one legacy multinomial draw per example, in order."""
    flipper = np.random.RandomState(seed)
    out = np.array(labels, dtype=np.int64)
    for i, c in enumerate(labels):
        flipped = flipper.multinomial(1, matrix[c], 1)[0]
        out[i] = np.where(flipped == 1)[0][0]
    return out, flipper


def oracle_instance_noise(labels, features, rate, seed, num_classes):
    """Reference ``get_instance_noisy_label`` (CPU). The reference seeds numpy's global
    generator; a local RandomState with the same seed gives the same stream."""
    rs = np.random.RandomState(seed)
    n = len(labels)
    d = int(np.prod(features.shape[1:]))
    flip_rate = stats.truncnorm((0 - rate) / 0.1, (1 - rate) / 0.1, loc=rate, scale=0.1).rvs(n, random_state=rs)
    w = torch.FloatTensor(rs.randn(num_classes, d, num_classes))
    data = torch.from_numpy(np.array(features)).type(torch.FloatTensor)
    rows = []
    for i in range(n):
        y = int(labels[i])
        a = data[i].view(1, -1).mm(w[y]).squeeze(0)
        a[y] = -math.inf
        a = flip_rate[i] * F.softmax(a, dim=0)
        a[y] += 1 - flip_rate[i]
        rows.append(a)
    p = torch.stack(rows, 0).numpy()
    classes = list(range(num_classes))
    return np.array([rs.choice(classes, p=p[i]) for i in range(n)], dtype=np.int64)


def random_matrix(rng, k, kind):
    """Row-stochastic matrices, including awkward ones (zeros, one-hot rows, tiny entries)."""
    if kind == "dense":
        t = rng.random((k, k)) ** rng.choice([1, 3, 8])
    elif kind == "sparse":
        t = rng.random((k, k))
        t[rng.random((k, k)) < 0.6] = 0.0
    elif kind == "identity_rows":
        t = rng.random((k, k))
        for r in rng.choice(k, size=max(1, k // 2), replace=False):
            t[r] = 0.0
            t[r, rng.integers(k)] = 1.0
    elif kind == "last_only":
        t = rng.random((k, k))
        t[:, :-1] *= rng.random((k, 1)) < 0.5  # some rows put all mass on the last class
    elif kind == "tiny":
        t = rng.random((k, k)) * 1e-9
        t[np.arange(k), rng.integers(0, k, k)] = 1.0
    elif kind == "halves":
        t = np.zeros((k, k))
        for r in range(k):
            cols = rng.choice(k, size=min(2, k), replace=False)
            t[r, cols] = 1.0 / len(cols)
    else:
        raise AssertionError(kind)
    for r in range(k):
        if t[r].sum() == 0:
            t[r, rng.integers(k)] = 1.0
    return t / t.sum(axis=1, keepdims=True)


def load_fashion_train():
    require_fashion_mnist()
    with gzip.open(FASHION / "train-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    assert magic == 2051
    images = np.frombuffer(raw[16:], dtype=np.uint8).reshape(int(n), int(rows), int(cols), 1)
    with gzip.open(FASHION / "train-labels-idx1-ubyte.gz", "rb") as f:
        raw = f.read()
    magic, m = np.frombuffer(raw[:8], dtype=">u4")
    assert magic == 2049 and m == n
    labels = np.frombuffer(raw[8:], dtype=np.uint8).astype(np.int64)
    return images, labels


@pytest.fixture(scope="module")
def fashion():
    return load_fashion_train()


@pytest.fixture(scope="module")
def fashion_fixture():
    return fixture_file("reference_noise_fashion_mnist_seed1.npz")


@pytest.fixture(scope="module")
def cifar_fixture():
    return fixture_file("reference_instance_noise_cifar_shaped_seed3.npz")


# --------------------------------------------------------------------------------------
# Reference fixtures
# --------------------------------------------------------------------------------------

FASHION_CASES = [
    ("symmetric", 0.2, 19.92),
    ("symmetric", 0.4, 40.09),
    ("pairflip", 0.2, 20.01),
    ("pairflip", 0.45, 45.11),
    ("instance", 0.2, 20.55),
    ("instance", 0.4, 39.79),
]


@pytest.mark.parametrize("noise_type,rate,percent", FASHION_CASES)
def test_fashion_mnist_fixture_bit_for_bit(fashion, fashion_fixture, noise_type, rate, percent):
    images, labels = fashion
    expected = fashion_fixture[f"{noise_type}_{round(rate * 100)}_noisy_labels"].astype(np.int64)
    result = make_noisy_labels(labels, noise_type=noise_type, noise_rate=rate, seed=1, num_classes=10, features=images)
    assert result.labels.dtype == np.int64 and result.labels.shape == (60000,)
    np.testing.assert_array_equal(result.labels, expected)
    assert round(result.realised_rate * 100, 2) == percent
    assert result.realised_rate == pytest.approx(np.mean(result.labels != labels))


def test_cifar_shaped_instance_fixture_bit_for_bit(cifar_fixture):
    images, labels = cifar_fixture["images"], cifar_fixture["labels"]
    assert images.shape == (500, 32, 32, 3) and images.dtype == np.uint8
    result = make_noisy_labels(labels, noise_type="instance", noise_rate=0.4, seed=3, num_classes=10, features=images)
    np.testing.assert_array_equal(result.labels, cifar_fixture["noisy_labels_instance_40"].astype(np.int64))
    assert round(result.realised_rate * 100, 1) == 37.8
    assert result.transition_matrix is None


def test_fixture_arrays_are_all_covered(fashion_fixture, cifar_fixture):
    # every array of both fixture files is checked by a test in this file or test_split.py
    covered = {f"{t}_{round(r * 100)}_noisy_labels" for t, r, _ in FASHION_CASES} | {"split_seed1_train_index"}
    assert set(fashion_fixture.files) == covered
    assert set(cifar_fixture.files) == {"images", "labels", "noisy_labels_instance_40", "train_index"}


# --------------------------------------------------------------------------------------
# Class-dependent noise against the oracle
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 10, 100])
def test_matrix_noise_matches_oracle_on_random_inputs(k):
    rng = np.random.default_rng(1000 + k)
    kinds = ["dense", "sparse", "identity_rows", "last_only", "tiny", "halves"]
    cases = 36 if k < 100 else 12
    for case in range(cases):
        matrix = random_matrix(rng, k, kinds[case % len(kinds)])
        n = int(rng.integers(1, 400 if k < 100 else 150))
        labels = rng.integers(0, k, n)
        seed = int(rng.integers(0, 2**32))
        expected, _ = oracle_matrix_noise(labels, matrix, seed)
        result = make_noisy_labels(labels, noise_type="transition", transition=matrix, seed=seed, num_classes=k)
        np.testing.assert_array_equal(result.labels, expected, err_msg=f"k={k} case={case} seed={seed}")
        np.testing.assert_array_equal(result.transition_matrix, matrix)


@pytest.mark.parametrize("noise_type", ["symmetric", "pairflip"])
@pytest.mark.parametrize("k", [2, 3, 10, 100])
def test_builtin_noise_matches_oracle(noise_type, k):
    rng = np.random.default_rng(k)
    for rate, seed in [(0.2, 1), (0.45, 7), (0.8, 123456789), (0.999, 2**32 - 1)]:
        labels = rng.integers(0, k, 3000 if k < 100 else 1000)
        matrix = transition_matrix(noise_type=noise_type, noise_rate=rate, num_classes=k)
        expected, _ = oracle_matrix_noise(labels, matrix, seed)
        result = make_noisy_labels(labels, noise_type=noise_type, noise_rate=rate, seed=seed, num_classes=k)
        np.testing.assert_array_equal(result.labels, expected)


def test_asymmetric_cifar10_matches_oracle():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, 5000)
    result = make_noisy_labels(labels, noise_type="asymmetric", noise_rate=0.4, seed=2, num_classes=10)
    expected, _ = oracle_matrix_noise(labels, result.transition_matrix, 2)
    np.testing.assert_array_equal(result.labels, expected)
    flips = {(int(a), int(b)) for a, b in zip(labels, result.labels) if a != b}
    assert flips == {(9, 1), (2, 0), (4, 7), (3, 5), (5, 3)}
    for src in (9, 2, 4, 3, 5):
        assert 0.3 < np.mean(result.labels[labels == src] != src) < 0.5
    for keep in (0, 1, 6, 7, 8):
        assert np.all(result.labels[labels == keep] == keep)


def test_cifar100_symmetric_at_scale_matches_oracle():
    rng = np.random.default_rng(100)
    labels = rng.integers(0, 100, 20000)
    matrix = transition_matrix(noise_type="symmetric", noise_rate=0.4, num_classes=100)
    expected, _ = oracle_matrix_noise(labels, matrix, 1)
    result = make_noisy_labels(labels, noise_type="symmetric", noise_rate=0.4, seed=1, num_classes=100)
    np.testing.assert_array_equal(result.labels, expected)


def test_draw_model_consumes_exactly_the_reference_uniforms():
    # The proof in _first_unproven assigns every uniform draw to an (example, step). Check
    # that the number of draws it attributes equals what the reference loop consumed.
    rng = np.random.default_rng(11)
    for k in (2, 3, 10, 100):
        for kind in ("dense", "sparse", "identity_rows", "last_only"):
            matrix = random_matrix(rng, k, kind)
            labels = rng.integers(0, k, 200)
            seed = int(rng.integers(0, 2**32))
            expected, flipper = oracle_matrix_noise(labels, matrix, seed)
            first, used = flips._first_unproven(labels, expected, flips._step_tables(matrix), seed)
            assert first == len(labels)
            assert np.random.RandomState(seed).random_sample(used + 1)[-1] == flipper.random_sample()


def test_zero_probability_and_certain_steps_draw_as_numpy_does():
    # p == 0 draws nothing; a ratio of exactly 1 draws one uniform and always succeeds;
    # the last class draws nothing when every earlier entry is zero.
    matrix = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    tables = flips._step_tables(matrix)
    assert tables.count.tolist() == [1, 2, 0]
    labels = np.array([2, 0, 1, 2, 2, 1, 0] * 50)
    expected, _ = oracle_matrix_noise(labels, matrix, 9)
    result = make_noisy_labels(labels, noise_type="transition", transition=matrix, seed=9, num_classes=3)
    np.testing.assert_array_equal(result.labels, expected)


def test_unproven_candidates_fall_back_to_the_exact_slow_path(monkeypatch):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 2000)
    matrix = transition_matrix(noise_type="symmetric", noise_rate=0.4, num_classes=10)
    expected, _ = oracle_matrix_noise(labels, matrix, 4)
    real = flips._candidate_labels
    calls = {"slow": 0}
    real_slow = flips._reference_draws

    def corrupted(y, m, seed):
        out = real(y, m, seed)
        out[1234] = (out[1234] + 1) % 10  # a wrong label: the proof must stop here
        return out

    def counting_slow(y, m, seed, first, offset, out):
        calls["slow"] += 1
        assert first == 1234
        real_slow(y, m, seed, first, offset, out)

    monkeypatch.setattr(flips, "_candidate_labels", corrupted)
    monkeypatch.setattr(flips, "_reference_draws", counting_slow)
    result = make_noisy_labels(labels, noise_type="symmetric", noise_rate=0.4, seed=4, num_classes=10)
    np.testing.assert_array_equal(result.labels, expected)
    assert calls["slow"] == 1


def test_sampler_failure_falls_back_from_the_first_example(monkeypatch):
    def broken(y, m, seed):
        raise ValueError("no 2-D pvals in this numpy")

    monkeypatch.setattr(flips, "_candidate_labels", broken)
    labels = np.random.default_rng(8).integers(0, 3, 500)
    matrix = transition_matrix(noise_type="pairflip", noise_rate=0.3, num_classes=3)
    expected, _ = oracle_matrix_noise(labels, matrix, 8)
    result = make_noisy_labels(labels, noise_type="pairflip", noise_rate=0.3, seed=8, num_classes=3)
    np.testing.assert_array_equal(result.labels, expected)


def test_binomial_restart_is_detected():
    # qn = 0.5, px1 = 0.25: U <= 0.5 gives X = 0, U in (0.5, 0.75] gives X = 1, and any
    # larger U makes numpy's inversion restart with a fresh uniform.
    tables = flips._StepTables(
        label=np.array([[0, 0]]),
        high=np.array([[False, True]]),
        qn=np.array([[0.5, 0.5]]),
        px1=np.array([[0.25, 0.25]]),
        count=np.array([2]),
        position=np.array([[0, -1]]),
    )
    u = np.array([0.3, 0.6, 0.9, 0.3, 0.6, 0.9])
    step = np.array([0, 0, 0, 1, 1, 1])
    success, restart = flips._step_outcomes(tables, np.zeros(6, dtype=np.int64), step, u)
    assert success.tolist() == [False, True, False, True, False, False]
    assert restart.tolist() == [False, False, True, False, False, True]


def test_restart_during_the_proof_hands_over_to_the_slow_path(monkeypatch):
    # A restart cannot be provoked with real uniforms (it needs U within an ulp of 1), so
    # pretend the 500th draw restarted: the examples from its owner on must be redrawn
    # exactly, and the result still equals the reference.
    rng = np.random.default_rng(21)
    labels = rng.integers(0, 10, 1000)
    matrix = transition_matrix(noise_type="symmetric", noise_rate=0.2, num_classes=10)
    expected, _ = oracle_matrix_noise(labels, matrix, 5)
    real = flips._step_outcomes

    def with_restart(tables, cls, step, u):
        success, restart = real(tables, cls, step, u)
        restart = restart.copy()
        restart[500] = True
        return success, restart

    seen = {}
    real_slow = flips._reference_draws

    def slow(y, m, seed, first, offset, out):
        seen["first"] = first
        real_slow(y, m, seed, first, offset, out)

    monkeypatch.setattr(flips, "_step_outcomes", with_restart)
    monkeypatch.setattr(flips, "_reference_draws", slow)
    result = make_noisy_labels(labels, noise_type="symmetric", noise_rate=0.2, seed=5, num_classes=10)
    np.testing.assert_array_equal(result.labels, expected)
    assert 0 < seen["first"] < 1000


# --------------------------------------------------------------------------------------
# Instance-dependent noise against the oracle
# --------------------------------------------------------------------------------------


def _random_features(rng, n, kind):
    if kind == "uint8_images":
        shape = (n,) + tuple(int(s) for s in rng.choice([(6, 6, 1), (4, 5, 3), (8, 8, 2)]))
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if kind == "float_features":
        return (rng.standard_normal((n, int(rng.integers(3, 40)))) * rng.choice([0.1, 1.0, 30.0])).astype(np.float32)
    if kind == "float64_positive":
        return rng.random((n, int(rng.integers(5, 60)))) * 3.0
    raise AssertionError(kind)


@pytest.mark.parametrize("k", [2, 3, 10])
def test_instance_noise_matches_oracle_on_random_inputs(k):
    rng = np.random.default_rng(50 + k)
    for case, kind in enumerate(["uint8_images", "float_features", "float64_positive"] * 3):
        n = int(rng.integers(1, 120))
        x = _random_features(rng, n, kind)
        labels = rng.integers(0, k, n)
        rate = float(rng.choice([0.05, 0.2, 0.4, 0.7]))
        seed = int(rng.integers(0, 2**32))
        expected = oracle_instance_noise(labels, x, rate, seed, k)
        result = make_noisy_labels(labels, noise_type="instance", noise_rate=rate, seed=seed, num_classes=k, features=x)
        np.testing.assert_array_equal(result.labels, expected, err_msg=f"k={k} case={case} kind={kind}")


def test_instance_noise_with_100_classes_matches_oracle():
    rng = np.random.default_rng(100)
    x = rng.integers(0, 256, (300, 4, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 100, 300)
    expected = oracle_instance_noise(labels, x, 0.4, 3, 100)
    result = make_noisy_labels(labels, noise_type="instance", noise_rate=0.4, seed=3, num_classes=100, features=x)
    np.testing.assert_array_equal(result.labels, expected)


def test_exact_instance_path_reproduces_the_reference_on_every_row(monkeypatch):
    # Send every row through the exact float32 path (normally only uncertified rows).
    def nothing_certified(logits, spread, c, q, u, d):
        return np.zeros(len(q), dtype=np.int64), np.zeros(len(q), dtype=bool)

    monkeypatch.setattr(instance, "_certified_labels", nothing_certified)
    rng = np.random.default_rng(77)
    for k, kind in [(10, "uint8_images"), (3, "float_features"), (2, "float64_positive")]:
        x = _random_features(rng, 150, kind)
        labels = rng.integers(0, k, 150)
        expected = oracle_instance_noise(labels, x, 0.4, 17, k)
        result = make_noisy_labels(labels, noise_type="instance", noise_rate=0.4, seed=17, num_classes=k, features=x)
        np.testing.assert_array_equal(result.labels, expected)


def test_reference_logits_are_the_sequential_float32_product_bit_for_bit():
    """The reference's per-row ``x.view(1, -1).mm(W[y])`` as the CPU it was recorded on computes
    it: float32 multiply, then add, feature by feature in order (the reference fixtures, which
    these logits decide, are the proof; see test_reference_fixture_*). Replayed with separately
    rounded numpy operations, it gives the same bits on every CPU. torch's own mm on the CPU at
    hand may add in another order (AVX-512 kernels do), so it is only compared to a tolerance."""
    rng = np.random.default_rng(9)
    for d, k, scale in [(784, 10, 255), (3072, 10, 255), (784, 100, 255), (50, 7, 1.0)]:
        x = (rng.random((40, d)) * scale).astype(np.float32)
        if scale == 255:
            x = np.round(x)
        w = rng.standard_normal((k, d, k)).astype(np.float32)
        y = rng.integers(0, k, 40)
        ours = instance._reference_logits(x, w, y)
        for i in (0, 17, 39):  # a scalar oracle: one float32 rounding per multiply and per add
            acc = [np.float32(0)] * k
            for j in range(d):
                acc = [np.float32(a + np.float32(w[y[i], j, c] * x[i, j])) for c, a in enumerate(acc)]
            np.testing.assert_array_equal(ours[i], np.array(acc, dtype=np.float32))
        wt = torch.from_numpy(w)
        mm = torch.stack([torch.from_numpy(x[i]).view(1, -1).mm(wt[y[i]]).squeeze(0) for i in range(40)]).numpy()
        np.testing.assert_allclose(ours, mm, rtol=2e-5, atol=1e-2 * scale)


def test_certified_instance_labels_decide_almost_every_row(fashion, monkeypatch):
    # The certificate is only useful if it is tight: on Fashion-MNIST it decides > 99 %.
    images, labels = fashion
    images, labels = images[:6000], labels[:6000]
    counted = {"undecided": 0}
    real = instance._certified_labels

    def counting(*args):
        lab, ok = real(*args)
        counted["undecided"] += int((~ok).sum())
        return lab, ok

    monkeypatch.setattr(instance, "_certified_labels", counting)
    make_noisy_labels(labels, noise_type="instance", noise_rate=0.4, seed=1, num_classes=10, features=images)
    assert counted["undecided"] < 60


def test_instance_noise_leaves_global_random_state_alone():
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    x = np.random.default_rng(0).integers(0, 256, (50, 3, 3, 1), dtype=np.uint8)
    make_noisy_labels(np.arange(50) % 4, noise_type="instance", noise_rate=0.3, seed=1, num_classes=4, features=x)
    make_noisy_labels(np.arange(50) % 4, noise_type="symmetric", noise_rate=0.3, seed=1, num_classes=4)
    after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(np_state[1:], after[1:])) and np_state[0] == after[0]
    assert torch.equal(torch_state, torch.get_rng_state())


# --------------------------------------------------------------------------------------
# Matrices, degenerate rates, results
# --------------------------------------------------------------------------------------


def test_transition_matrices():
    sym = transition_matrix(noise_type="symmetric", noise_rate=0.4, num_classes=4)
    expected_sym = np.full((4, 4), 0.4 / 3)
    np.fill_diagonal(expected_sym, 0.6)
    np.testing.assert_array_equal(sym, expected_sym)
    pair = transition_matrix(noise_type="pairflip", noise_rate=0.45, num_classes=3)
    np.testing.assert_array_equal(pair, [[0.55, 0.45, 0.0], [0.0, 0.55, 0.45], [0.45, 0.0, 0.55]])
    asym = transition_matrix(noise_type="asymmetric", noise_rate=0.3, num_classes=10)
    expected = np.eye(10)
    for s, d in [(9, 1), (2, 0), (4, 7), (3, 5), (5, 3)]:
        expected[s, s], expected[s, d] = 0.7, 0.3
    np.testing.assert_array_equal(asym, expected)
    np.testing.assert_array_equal(transition_matrix(noise_type="none", noise_rate=0.3, num_classes=5), np.eye(5))
    np.testing.assert_array_equal(transition_matrix(noise_type="symmetric", noise_rate=0.0, num_classes=5), np.eye(5))
    for t in (sym, pair, asym):
        np.testing.assert_allclose(t.sum(axis=1), 1.0)


@pytest.mark.parametrize("noise_type", ["symmetric", "pairflip", "asymmetric", "instance", "none"])
def test_zero_rate_and_none_keep_the_labels(noise_type):
    labels = np.arange(40) % 10
    x = np.zeros((40, 2, 2, 1), dtype=np.uint8)
    for rate in (0.0, None):  # None: no rate given
        result = make_noisy_labels(labels, noise_type=noise_type, noise_rate=rate, seed=1, num_classes=10, features=x)
        assert isinstance(result, NoisyLabels)
        np.testing.assert_array_equal(result.labels, labels)
        assert result.labels.dtype == np.int64 and result.realised_rate == 0.0


@pytest.mark.parametrize(
    "noise_type, rate, message",
    [
        ("none", 0.3, "noise_type='none' keeps the labels, so noise_rate 0.3 would be ignored; leave noise_rate out"),
        (
            "transition",
            0.0,
            "noise_type='transition' takes its flip rates from the transition matrix, so noise_rate 0.0 "
            "would be ignored; leave noise_rate out",
        ),
        (
            "transition",
            0.2,
            "noise_type='transition' takes its flip rates from the transition matrix, so noise_rate 0.2 "
            "would be ignored; leave noise_rate out",
        ),
    ],
)
def test_a_rate_the_noise_type_would_ignore_is_refused(noise_type, rate, message):
    with pytest.raises(InputError) as e:
        make_noisy_labels(
            np.arange(10) % 2,
            noise_type=noise_type,
            noise_rate=rate,
            seed=1,
            num_classes=2,
            transition=np.eye(2) if noise_type == "transition" else None,
        )
    assert str(e.value) == message
    # without the rate, the same call works: the matrix alone sets the flips
    if noise_type == "transition":
        flipped = make_noisy_labels(
            np.arange(10) % 2, noise_type="transition", seed=1, num_classes=2, transition=[[0, 1], [1, 0]]
        )
        np.testing.assert_array_equal(flipped.labels, 1 - np.arange(10) % 2)


def test_empty_labels():
    result = make_noisy_labels(
        np.array([], dtype=np.int64), noise_type="symmetric", noise_rate=0.2, seed=1, num_classes=3
    )
    assert result.labels.shape == (0,) and result.realised_rate == 0.0


def test_labels_accept_whole_floats_and_lists():
    a = make_noisy_labels([0, 1, 2, 1], noise_type="symmetric", noise_rate=0.5, seed=3, num_classes=3)
    b = make_noisy_labels(np.array([0.0, 1.0, 2.0, 1.0]), noise_type="symmetric", noise_rate=0.5, seed=3, num_classes=3)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_noise_types_constant():
    assert NOISE_TYPES == ("none", "symmetric", "pairflip", "instance", "asymmetric", "transition")


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _call(**overrides):
    kwargs = dict(noise_type="symmetric", noise_rate=0.2, seed=1, num_classes=3)
    labels = overrides.pop("labels", [0, 1, 2])
    kwargs.update(overrides)
    if kwargs["noise_type"] == "transition" and "noise_rate" not in overrides:
        del kwargs["noise_rate"]  # the matrix sets the rates
    return make_noisy_labels(labels, **kwargs)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(noise_type="gaussian"), "noise_type must be one of"),
        (dict(noise_rate=-0.1), "noise_rate must be a number in [0, 1)"),
        (dict(noise_rate=1.0), "noise_rate must be a number in [0, 1)"),
        (dict(noise_rate="high"), "noise_rate must be a number in [0, 1)"),
        (dict(num_classes=1), "num_classes must be an integer of at least 2"),
        (dict(num_classes=2.5), "num_classes must be an integer of at least 2"),
        (dict(seed=-1), "seed must be an integer in 0..4294967295"),
        (dict(seed=2**32), "seed must be an integer in 0..4294967295"),
        (dict(seed=1.5), "seed must be an integer in 0..4294967295"),
        (dict(labels=[0, 3, 1]), "labels must lie in 0..2 for 3 classes; found 3"),
        (dict(labels=[0, -1]), "labels must lie in 0..2 for 3 classes; found -1"),
        (dict(labels=[[0, 1]]), "labels must be one-dimensional"),
        (dict(labels=[0.5, 1.0]), "labels must hold integers; found 0.5"),
        (dict(labels=["a", "b"]), "labels must hold integers, got dtype"),
        (dict(noise_type="asymmetric"), "defined for the 10 CIFAR-10 classes only"),
        (dict(noise_type="instance"), "needs the training inputs"),
        (dict(noise_type="instance", features=np.zeros((2, 4))), "features must have shape (N, ...) with N = 3"),
        (dict(noise_type="instance", features=np.zeros(3)), "features must have shape (N, ...) with N = 3"),
        (dict(noise_type="instance", features=np.full((3, 2), np.nan)), "features must be finite"),
        (dict(noise_type="transition"), "needs a transition matrix"),
        (dict(noise_type="transition", transition=np.eye(2)), "must have shape (3, 3)"),
        (
            dict(noise_type="transition", transition=[[1, 0, 0], [0.5, 0.6, 0], [0, 0, 1]]),
            "row 1 of the transition matrix (clean class 1) sums to",
        ),
        (
            dict(noise_type="transition", transition=[[1, 0, 0], [0, 1, 0], [-0.1, 0.1, 1]]),
            "row 2 of the transition matrix (clean class 2) must hold probabilities",
        ),
        (
            dict(noise_type="transition", transition=[[np.nan, 1, 0], [0, 1, 0], [0, 0, 1]]),
            "row 0 of the transition matrix",
        ),
        (dict(transition=np.eye(3)), "use noise_type='transition'"),
    ],
)
def test_validation_errors(overrides, message):
    with pytest.raises(InputError) as err:
        _call(**overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_transition_matrix_validation():
    with pytest.raises(InputError, match="no built-in transition matrix"):
        transition_matrix(noise_type="instance", noise_rate=0.2, num_classes=10)
    with pytest.raises(InputError, match="noise_type must be one of"):
        transition_matrix(noise_type="sym", noise_rate=0.2, num_classes=10)
    with pytest.raises(InputError, match="num_classes"):
        transition_matrix(noise_type="symmetric", noise_rate=0.2, num_classes=0)


def test_input_error_is_a_value_error():
    with pytest.raises(ValueError, match=r"must be a number in \[0, 1\), got 2\.0"):
        _call(noise_rate=2.0)


# --------------------------------------------------------------------------------------
# Label files
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_label_files_round_trip(tmp_path, suffix):
    labels = np.array([3, 0, 9, 9, 1], dtype=np.int64)
    path = tmp_path / f"noisy{suffix}"
    write_labels(path, labels)
    back = read_labels(path)
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left behind
    write_labels(str(path), labels[::-1])  # replaces atomically
    np.testing.assert_array_equal(read_labels(str(path)), labels[::-1])


def test_csv_with_header_and_blank_lines(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("label\n3\n\n 4 \n5\n")
    np.testing.assert_array_equal(read_labels(path), [3, 4, 5])


def test_npy_with_whole_floats(tmp_path):
    path = tmp_path / "labels.npy"
    np.save(path, np.array([1.0, 2.0]))
    np.testing.assert_array_equal(read_labels(path), [1, 2])


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("bad.csv", "label\n1\ntwo\n", "line 3 of label file"),
        ("bad.csv", "1\n2\n3.5\n", "line 3 of label file"),
        ("bad.csv", "1,2\n3,4\n", "line 2 of label file"),
        ("empty.csv", "label\n", "holds no labels"),
        ("labels.txt", "1\n", "must end in .npy or .csv"),
        ("bad.npy", b"not numpy", "is not a readable .npy array"),
    ],
)
def test_malformed_label_files(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        read_labels(path)


def test_label_file_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_labels(tmp_path / "missing.npy")
    np.save(tmp_path / "two_d.npy", np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(InputError, match="one-dimensional"):
        read_labels(tmp_path / "two_d.npy")
    np.save(tmp_path / "frac.npy", np.array([0.5]))
    with pytest.raises(InputError, match="must hold integers"):
        read_labels(tmp_path / "frac.npy")
    with pytest.raises(InputError, match=r"must end in \.npy or \.csv"):
        write_labels(tmp_path / "x.json", [1, 2])
    with pytest.raises(InputError, match="does not exist"):
        write_labels(tmp_path / "nowhere" / "x.npy", [1, 2])
    with pytest.raises(InputError, match="one-dimensional"):
        write_labels(tmp_path / "x.npy", [[1, 2]])
    with pytest.raises(InputError, match="must hold integers"):
        write_labels(tmp_path / "x.csv", [0.5])
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())

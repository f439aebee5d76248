"""Instance-dependent noise (Xia et al. 2020, part-dependent), bit-for-bit equal to the reference.

The reference projects every example with a random ``K x D x K`` tensor, computing each
projection with a float32 ``1 x D`` matrix product, and samples with ``np.random.choice``.
Here the projections are computed class by class with one matrix product, every label is
certified with a rigorous floating-point error bound, and the few examples whose label is
not certified (their uniform draw falls within the rounding uncertainty of a cumulative
probability) are recomputed with the reference's exact float32 arithmetic (a left-to-right
float32 dot product, which is what the reference's per-row product computes).
"""

from __future__ import annotations

import math

import numpy as np

from ..base.errors import InputError
from .flips import BLOCK_ELEMENTS

# Standard deviation of the per-example flip rate of instance noise (reference: norm_std).
_INSTANCE_RATE_STD = 0.1

# Absolute slack on every float32 softmax probability (subnormal results) and relative
# slack on every cumulative probability (float64 sums and division) when certifying labels.
_SOFTMAX_ABS_SLACK = 1e-30
_CDF_REL_SLACK = 1e-9


def instance_noise(y: np.ndarray, x: np.ndarray, rate: float, seed: int, k: int) -> np.ndarray:
    """The reference's ``get_instance_noisy_label`` without the per-example loop.

    Reference draws, all from ``np.random.seed(seed)``: flip rates from
    ``truncnorm((0 - n)/0.1, (1 - n)/0.1, loc=n, scale=0.1).rvs(N)``; ``W = randn(K, D, K)``
    (used as float32); then one ``np.random.choice(K, p=P[i])`` per example, i.e. one
    uniform ``u_i`` each and ``label = searchsorted(cumsum(P[i]) / sum, u_i, 'right')``,
    where ``P[i] = q_i * softmax(s)`` with ``s = x_i W[y_i]`` (float32), ``s[y_i] = -inf``,
    and ``P[i, y_i] = 1 - q_i``.
    """
    from scipy import stats

    n, d = len(y), int(np.prod(x.shape[1:]))
    flat = x.reshape(n, d)
    stream = np.random.RandomState(seed)
    std = _INSTANCE_RATE_STD
    q = stats.truncnorm((0 - rate) / std, (1 - rate) / std, loc=rate, scale=std).rvs(size=n, random_state=stream)
    q = np.asarray(q, dtype=np.float64).reshape(n)
    # randn(K, D, K) drawn block by block: the legacy normal generator keeps its spare
    # value between calls, so the concatenated draws are the same stream.
    w = np.empty((k, d, k), dtype=np.float32)
    for c in range(k):
        w[c] = stream.randn(d, k)
    u = stream.random_sample(n)

    nonneg = flat.dtype.kind == "u" or bool(flat.min() >= 0)
    block = max(1, 16 * BLOCK_ELEMENTS // d)  # rows of float32 features per product
    labels = np.empty(n, dtype=np.int64)
    undecided = []
    for c in range(k):
        rows = np.flatnonzero(y == c)
        both = np.concatenate([w[c], np.abs(w[c])], axis=1)  # logits and spread in one product
        for start in range(0, len(rows), block):
            idx = rows[start : start + block]
            xc = flat[idx].astype(np.float32)
            if nonneg:
                out = xc @ both
                logits, spread = out[:, :k], out[:, k:]
            else:
                logits = xc @ w[c]
                spread = np.abs(xc) @ both[:, k:]
            lab, ok = _certified_labels(logits, spread, c, q[idx], u[idx], d)
            labels[idx] = lab
            undecided.append(idx[~ok])
    todo = np.concatenate(undecided) if undecided else np.empty(0, dtype=np.int64)
    if todo.size:
        labels[todo] = _exact_instance_labels(flat[todo], y[todo], w, q[todo], u[todo])
    return labels


def _certified_labels(logits, spread, c, q, u, d):
    """Labels that provably equal the reference's, and which rows could be decided.

    ``logits`` come from any float32 matrix product; the reference's left-to-right float32
    dot product differs from the exact one by at most ``gamma_D * spread`` (``spread`` =
    ``|x| @ |w|``) and so does ours, hence the reference's logits lie within
    ``delta = 2 * gamma_D * spread`` (inflated for the rounding of ``spread`` itself) of
    ours. Bounding each softmax probability over that box, then each cumulative
    probability, decides ``cdf_j <= u`` for every boundary unless ``u`` lies within the
    uncertainty of one of them.
    """
    gamma = (d + 2) * 2.0**-24
    gamma = gamma / (1.0 - gamma)
    a = logits.astype(np.float64)
    delta = 2.0 * gamma * spread.astype(np.float64) / (1.0 - gamma) + 1e-30
    finite = np.isfinite(a).all(axis=1) & np.isfinite(delta).all(axis=1)
    lo = a - delta
    hi = a + delta
    lo[:, c] = -np.inf
    hi[:, c] = -np.inf
    q32 = q.astype(np.float32).astype(np.float64)
    keep = (1.0 - q).astype(np.float32).astype(np.float64)
    # cheap bounds first (sharp when one class dominates, the usual case with raw pixels);
    # the rows they leave open get the sharper but costlier bounds
    s_lo, s_hi = _softmax_bounds(lo, hi, sharp=False)
    labels, ok = _decide(s_lo, s_hi, c, q32, keep, u)
    ok &= finite
    open_rows = np.flatnonzero(~ok & finite)
    if open_rows.size:
        s_lo, s_hi = _softmax_bounds(lo[open_rows], hi[open_rows], sharp=True)
        lab2, ok2 = _decide(s_lo, s_hi, c, q32[open_rows], keep[open_rows], u[open_rows])
        labels[open_rows] = lab2
        ok[open_rows] = ok2
    return labels, ok


def _decide(s_lo, s_hi, c, q32, keep, u):
    """Labels decided by softmax bounds: ``#{j : cdf_j <= u}`` where every boundary is sure."""
    k = s_lo.shape[1]
    s_hi[:, c] = 0.0
    s_lo[:, c] = 0.0
    rel = _softmax_rel_slack(k)
    p_lo = np.maximum(q32[:, None] * s_lo * (1 - rel) - _SOFTMAX_ABS_SLACK, 0.0)
    p_hi = q32[:, None] * s_hi * (1 + rel) + _SOFTMAX_ABS_SLACK
    p_lo[:, c] = keep
    p_hi[:, c] = keep
    head_lo = np.cumsum(p_lo, axis=1)[:, :-1]
    head_hi = np.cumsum(p_hi, axis=1)[:, :-1]
    tail_lo = np.cumsum(p_lo[:, ::-1], axis=1)[:, ::-1][:, 1:]
    tail_hi = np.cumsum(p_hi[:, ::-1], axis=1)[:, ::-1][:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        cdf_lo = head_lo / (head_lo + tail_hi) * (1 - _CDF_REL_SLACK)
        cdf_hi = head_hi / (head_hi + tail_lo) * (1 + _CDF_REL_SLACK)
    below = cdf_hi <= u[:, None]  # surely cdf_j <= u
    above = cdf_lo > u[:, None]  # surely cdf_j > u
    return below.sum(axis=1), (below | above).all(axis=1)


def _softmax_rel_slack(k: int) -> float:
    """Relative accuracy of a float32 softmax over ``k`` logits, with a safety factor 8.

    Rounding the argument ``x - max`` (only arguments above -104 give a nonzero float32
    exponential, so it is off by at most 104 * 2**-24 relative in the result), the
    exponential itself (about 1 ulp), a sum of ``k`` terms and a division: about
    ``(k + 110) * 2**-24``.
    """
    return 8.0 * (k + 120) * 2.0**-24


def _softmax_bounds(lo: np.ndarray, hi: np.ndarray, *, sharp: bool):
    """Bounds on every softmax probability when each logit lies in ``[lo, hi]``.

    Entries with ``lo = hi = -inf`` are masked classes. Always computed (cheap, sharp
    when one class dominates, as with raw pixels)::

        1 / (1 + (K - 2) e^(max_{j!=k} hi_j - lo_k))  <=  s_k  <=  1 / (1 + e^(max_{j!=k} lo_j - hi_k))

    With ``sharp=True`` also (the tighter bound wins)::

        e^lo_k / (e^lo_k + sum_{j!=k} e^hi_j)  <=  s_k  <=  e^hi_k / (e^hi_k + sum_{j!=k} e^lo_j)

    where each sum over the other classes is the row total minus the own term, widened by
    the worst-case rounding and cancellation error.
    """
    from scipy.special import expit

    k = lo.shape[1]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        s_hi = expit(hi - _max_of_others(lo))
        s_lo = expit(lo - _max_of_others(hi) - math.log(max(k - 2, 1)))
    if not sharp:
        return s_lo, s_hi
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        shift = np.max(hi, axis=1, keepdims=True)
        shift[~np.isfinite(shift)] = 0.0
        e_lo = np.exp(lo - shift)
        e_hi = np.exp(hi - shift)
        total_lo = e_lo.sum(axis=1, keepdims=True)
        total_hi = e_hi.sum(axis=1, keepdims=True)
        slack = (k + 4) * 2.0**-50
        others_hi = (total_hi - e_hi) * (1 + slack) + total_hi * slack  # >= sum_{j!=k} e^hi_j
        others_lo = np.maximum((total_lo - e_lo) * (1 - slack) - total_lo * slack, 0.0)  # <= sum_{j!=k} e^lo_j
        # near the subnormal range exponentials lose their relative accuracy: give up there
        others_lo = np.where(total_lo > 1e-280, others_lo, 0.0)
        ratio_lo = e_lo / (e_lo + others_hi)
        ratio_hi = np.where(e_hi > 1e-280, e_hi / (e_hi + others_lo), 1.0)
    # fmax / fmin ignore the NaN of 0 / 0 (both terms underflowed): the other bound holds
    return np.fmax(s_lo, ratio_lo), np.fmin(s_hi, ratio_hi)


def _max_of_others(v: np.ndarray) -> np.ndarray:
    """For every column j, the row maximum over the other columns."""
    m, k = v.shape
    if k == 1:
        return np.full_like(v, -np.inf)
    top = np.argmax(v, axis=1)
    first = v[np.arange(m), top]
    rest = v.copy()
    rest[np.arange(m), top] = -np.inf
    second = rest.max(axis=1)
    out = np.repeat(first[:, None], k, axis=1)
    out[np.arange(m), top] = second
    return out


def _reference_logits(x: np.ndarray, w_rows: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The reference's ``x.view(1, -1).mm(W[y])`` in float32, bit for bit.

    On the CPU the reference fixtures were recorded on, that product is a sequence of
    float32 multiply-then-add steps over the D features in order (the fixtures' labels are
    reproduced with it); replaying it with separately rounded numpy operations gives the same
    bits on any platform. torch's own mm may add in another order on another CPU (AVX-512
    kernels do), which is why it is not called here.
    """
    m, d = x.shape
    k = w_rows.shape[2]
    xs = x.astype(np.float32)
    acc = np.zeros((m, k), dtype=np.float32)
    tmp = np.empty_like(acc)
    for j in range(d):
        np.multiply(w_rows[y, j, :], xs[:, j : j + 1], out=tmp)
        np.add(acc, tmp, out=acc)
    return acc


def _exact_instance_labels(x, y, w, q, u) -> np.ndarray:
    """The reference's float32 pipeline for a few rows: logits, softmax, choice."""
    import torch

    m = len(y)
    labels = np.empty(m, dtype=np.int64)
    k, d = w.shape[2], x.shape[1]
    chunk = max(1, min(BLOCK_ELEMENTS // k, 16 * BLOCK_ELEMENTS // d))  # bounded memory, few Python steps
    for start in range(0, m, chunk):
        sl = slice(start, start + chunk)
        yy = y[sl]
        logits = torch.from_numpy(_reference_logits(x[sl], w, yy))
        rows = torch.arange(len(yy))
        cls = torch.from_numpy(yy)
        logits[rows, cls] = -math.inf
        probs = torch.from_numpy(q[sl]).to(torch.float32)[:, None] * torch.softmax(logits, dim=1)
        probs[rows, cls] += torch.from_numpy(1.0 - q[sl]).to(torch.float32)
        p = probs.numpy().astype(np.float64)
        if not np.all(np.isfinite(p)):
            raise InputError("features are too large: the instance-noise projection overflows float32")
        cdf = np.cumsum(p, axis=1)
        cdf /= cdf[:, -1:]
        labels[sl] = (cdf <= u[sl, None]).sum(axis=1)
    return labels

"""Class-dependent noise: labels flipped with a row of a transition matrix, exactly as the reference.

``symmetric``, ``pairflip``, ``asymmetric`` and ``transition`` noise flip each label with
a row of a transition matrix ``T`` (``T[i, j] = P(noisy = j | clean = i)``). The reference
draws example after example with ``numpy.random.RandomState(seed).multinomial(1, T[y])``.
Here numpy's own compiled multinomial sampler runs over all rows in one call on the very
same Mersenne-Twister stream, and an independent vectorised check replays numpy's
legacy sampler decision by decision against that stream (one comparison per uniform
draw) to prove that every label is the one the reference loop gives. If the check ever
fails (a future numpy that changes its sampler, or the astronomically rare "restart"
branch of numpy's binomial inversion), the labels from the first unproven example on are
drawn again one by one with ``RandomState.multinomial``, exactly as the reference does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Work is done in blocks of about this many array elements (bounded memory), and the
# proof checks about _VERIFY_BLOCK uniform draws at a time.
BLOCK_ELEMENTS = 1 << 20
_VERIFY_BLOCK = 1 << 21


@dataclass(frozen=True)
class _StepTables:
    """numpy's legacy ``multinomial(1, p)`` for every class, unrolled into binomial steps.

    For clean class ``c`` the legacy sampler walks ``j = 0 .. K-2`` and draws a Bernoulli
    with ratio ``r = p[j] / remaining`` (``remaining`` starts at 1.0 and loses ``p[j]``
    after each failure), stopping at the first success; if none succeeds the label is
    ``K - 1``. A zero ratio draws nothing. Any other step consumes one uniform ``U`` and
    runs the binomial inversion on ``a = r`` (if ``r <= 0.5``) or ``a = 1 - r``:
    ``qn = exp(log(1 - a))``; ``X = 0`` if ``U <= qn``; else ``X = 1`` if
    ``U - qn <= px1 = (a * qn) / (1 - a)``; else the draw restarts with a new uniform.
    The Bernoulli is ``X`` (``r <= 0.5``) or ``1 - X``.

    Row ``c`` lists only the steps that draw, in order (up to the first step that cannot
    fail): ``label`` (the class ``j``), ``high`` (``r > 0.5``), ``qn`` and ``px1``;
    ``count[c]`` is their number and ``position[c, j]`` the index of class ``j`` in the
    row (-1 if it is not there).
    """

    label: np.ndarray  # int64 (K, S)
    high: np.ndarray  # bool (K, S)
    qn: np.ndarray  # float64 (K, S)
    px1: np.ndarray  # float64 (K, S)
    count: np.ndarray  # int64 (K,)
    position: np.ndarray  # int64 (K, K)


def _step_tables(matrix: np.ndarray) -> _StepTables:
    k = matrix.shape[0]
    rows = []
    for c in range(k):
        p = [float(v) for v in matrix[c]]
        remaining = 1.0
        steps = []
        for j in range(k - 1):
            r = p[j] / remaining
            if r != 0.0:
                high = not (r <= 0.5)
                a = 1.0 - r if high else r
                q = 1.0 - a
                # C's exp(n * log(q)) with n == 1, through the same libm as numpy's C code.
                qn = math.exp(1.0 * math.log(q)) if q > 0.0 else float("nan")
                px1 = (1.0 * a * qn) / (1.0 * q)
                steps.append((j, high, qn, px1))
                if high and qn >= 1.0:  # U < 1 <= qn: this step always succeeds
                    break
            remaining -= p[j]
        rows.append(steps)
    width = max(1, max(len(s) for s in rows))
    label = np.full((k, width), k - 1, dtype=np.int64)
    high_table = np.zeros((k, width), dtype=bool)
    qn_table = np.zeros((k, width))
    px1_table = np.zeros((k, width))
    count = np.zeros(k, dtype=np.int64)
    position = np.full((k, k), -1, dtype=np.int64)
    for c, steps in enumerate(rows):
        count[c] = len(steps)
        for s, (j, h, a, b) in enumerate(steps):
            label[c, s], high_table[c, s], qn_table[c, s], px1_table[c, s] = j, h, a, b
            position[c, j] = s
    return _StepTables(label, high_table, qn_table, px1_table, count, position)


def _step_outcomes(tables: _StepTables, cls: np.ndarray, step: np.ndarray, u: np.ndarray):
    """Replay single binomial steps: returns (success, restart) boolean arrays."""
    flat = cls * tables.qn.shape[1] + step
    qn = tables.qn.ravel().take(flat)
    px1 = tables.px1.ravel().take(flat)
    high = tables.high.ravel().take(flat)
    over = u > qn  # X >= 1 (False when qn is NaN, as in C)
    within = ~((u - qn) > px1)  # X == 1 without a restart
    success = np.where(high, ~over, over & within)
    restart = over & ~within
    return success, restart


def _candidate_labels(y: np.ndarray, matrix: np.ndarray, seed: int) -> np.ndarray:
    """Draw all labels with numpy's compiled multinomial on the reference's MT19937 stream.

    ``Generator.multinomial`` runs the same C routine (``random_multinomial``) as the
    legacy ``RandomState.multinomial`` used by the reference, one row after another on
    the same bit stream. The result is proven (or refuted) by :func:`_first_unproven`.
    """
    legacy = np.random.RandomState(seed)
    bits = np.random.MT19937()
    # numpy's stubs type get_state(legacy=False) as a plain dict; it is the MT19937 state the setter takes
    bits.state = legacy.get_state(legacy=False)  # type: ignore[assignment]
    gen = np.random.Generator(bits)
    out = np.empty(len(y), dtype=np.int64)
    rows = max(1, BLOCK_ELEMENTS // matrix.shape[0])
    for start in range(0, len(y), rows):
        draws = gen.multinomial(1, matrix[y[start : start + rows]])
        out[start : start + rows] = draws.argmax(axis=1)
    return out


def _first_unproven(y: np.ndarray, candidate: np.ndarray, tables: _StepTables, seed: int) -> tuple[int, int]:
    """Check candidate labels against the legacy sampler, one comparison per uniform draw.

    Given the labels, the number of uniforms each example consumed is known (the index of
    its label among its class's drawing steps, plus one; or all steps when the label is
    the fallback class ``K - 1``), so every draw can be matched to its (example, step)
    and every decision replayed at once.

    Returns ``(i, offset)``: the first example whose label is not proven and the number
    of uniforms consumed before it (``i == len(y)`` when all are proven).
    """
    n = len(y)
    k = tables.position.shape[0]
    in_range = (candidate >= 0) & (candidate < k)
    fallback = candidate == k - 1
    pos = tables.position[y, np.where(in_range, candidate, 0)]
    consumed = np.where(fallback, tables.count[y], pos + 1)
    invalid = ~in_range | (~fallback & (pos < 0))
    limit = int(np.argmax(invalid)) if invalid.any() else n
    offsets = np.zeros(limit + 1, dtype=np.int64)
    np.cumsum(consumed[:limit], out=offsets[1:])

    stream = np.random.RandomState(seed)
    start = 0
    while start < limit:
        # a block of whole examples with about _VERIFY_BLOCK draws
        stop = int(np.searchsorted(offsets, offsets[start] + _VERIFY_BLOCK, side="right")) - 1
        stop = min(max(stop, start + 1), limit)
        m = int(offsets[stop] - offsets[start])
        if m:
            u = stream.random_sample(m)
            example = np.repeat(np.arange(start, stop), consumed[start:stop])
            step = np.arange(m) - (offsets[example] - offsets[start])
            cls = y[example]
            success, restart = _step_outcomes(tables, cls, step, u)
            expected = (step == consumed[example] - 1) & ~fallback[example]
            bad = (success != expected) | restart
            if bad.any():
                first = int(example[int(np.argmax(bad))])
                return first, int(offsets[first])
        start = stop
    return limit, int(offsets[limit])


def _reference_draws(y: np.ndarray, matrix: np.ndarray, seed: int, first: int, offset: int, out: np.ndarray) -> None:
    """The exact slow path: the reference's per-example loop from example ``first`` on."""
    stream = np.random.RandomState(seed)
    while offset > 0:  # skip the uniforms consumed by the proven examples
        step = min(offset, _VERIFY_BLOCK)
        stream.random_sample(step)
        offset -= step
    for i in range(first, len(y)):
        out[i] = int(np.argmax(stream.multinomial(1, matrix[y[i]])))


def flip_with_matrix(y: np.ndarray, matrix: np.ndarray, seed: int) -> np.ndarray:
    """Noisy labels equal to ``RandomState(seed).multinomial(1, matrix[y_i])`` in order."""
    if len(y) == 0:
        return y.copy()
    tables = _step_tables(matrix)
    try:
        candidate = _candidate_labels(y, matrix, seed)
    except (TypeError, ValueError):  # e.g. an old numpy without 2-D pvals: prove nothing
        candidate = np.full(len(y), -1, dtype=np.int64)
    first, offset = _first_unproven(y, candidate, tables, seed)
    if first < len(y):
        _reference_draws(y, matrix, seed, first, offset, candidate)
    return candidate

"""Continual-learning figures from an accuracy matrix.

``matrix[t][k]`` is the accuracy on concept ``k``'s test set after update ``t``;
``order[t]`` is the concept update ``t`` trained on. Concepts may recur, so "the first time
a concept was learned" is ``order.index(k)``, and concepts not yet seen are left out.

>>> m = [[0.9, 0.1], [0.5, 0.8], [0.9, 0.6]]
>>> order = [0, 1, 0]
>>> round(average_accuracy(m), 3)
0.75
>>> round(forgetting(m, order), 3)
0.1
>>> round(backward_transfer(m, order), 3)
-0.1
>>> [round(f, 3) for f in max_forgetting_per_concept(m, order)]
[0.4, 0.2]
"""

from __future__ import annotations

from collections.abc import Sequence

Matrix = Sequence[Sequence[float]]


def average_accuracy(matrix: Matrix) -> float:
    """Mean accuracy over every concept after the last update (Lopez-Paz & Ranzato's ACC)."""
    last = matrix[-1]
    return sum(last) / len(last)


def average_incremental_accuracy(matrix: Matrix, order: Sequence[int]) -> float:
    """Mean over updates of the mean accuracy on the concepts seen so far."""
    means = []
    for t, row in enumerate(matrix):
        seen = sorted(set(order[: t + 1]))
        means.append(sum(row[k] for k in seen) / len(seen))
    return sum(means) / len(means)


def forgetting(matrix: Matrix, order: Sequence[int]) -> float:
    """Mean drop from each concept's best earlier accuracy to its final accuracy
    (Chaudhry et al.), over the concepts learned before the last update; 0 if none."""
    last = len(matrix) - 1
    drops = []
    for k in sorted(set(order[:last])):
        first = order.index(k)
        best = max(matrix[t][k] for t in range(first, last))
        drops.append(best - matrix[last][k])
    return sum(drops) / len(drops) if drops else 0.0


def max_forgetting_per_concept(matrix: Matrix, order: Sequence[int]) -> list[float]:
    """For each concept, the largest drop below its best accuracy so far, at any update after
    it was first learned (not only at the end, so a concept that recurs and is relearned
    still shows how much was lost in between). 0 for a concept never learned."""
    out = []
    for k in range(len(matrix[0])):
        if k not in order:
            out.append(0.0)
            continue
        first = order.index(k)
        best, worst_drop = matrix[first][k], 0.0
        for t in range(first + 1, len(matrix)):
            worst_drop = max(worst_drop, best - matrix[t][k])
            best = max(best, matrix[t][k])
        out.append(worst_drop)
    return out


def backward_transfer(matrix: Matrix, order: Sequence[int]) -> float:
    """Mean change, from just after update t to the end, of the accuracy on update t's
    concept, over all but the last update (negative: forgetting)."""
    last = len(matrix) - 1
    if last == 0:
        return 0.0
    return sum(matrix[last][order[t]] - matrix[t][order[t]] for t in range(last)) / last

"""YouTube-8M metrics written straight from their definitions, slowly.

Loops over videos and classes; ties are resolved by averaging the AP over
every order of the tied items (enumerated), which is the expectation that
eval_util's fixed random shuffle draws one sample of.
"""

import itertools

import numpy as np


def kept(row, k):
    """Class indices of a video's top-k, by (score desc, class index asc)."""
    return sorted(range(len(row)), key=lambda c: (-row[c], c))[:k]


def ap_all_orders(items, total_positives):
    """Mean over every order consistent with the scores of the AP of
    [(score, is_positive)] with `total_positives` as denominator."""
    if total_positives == 0:
        return 0.0
    groups = [list(g) for _, g in itertools.groupby(sorted(items, key=lambda x: -x[0]), key=lambda x: x[0])]
    orders = [set(itertools.permutations([y for _, y in g])) for g in groups]
    total, count = 0.0, 0
    for combo in itertools.product(*orders):
        seq = [y for part in combo for y in part]
        hits, ap = 0, 0.0
        for i, y in enumerate(seq, start=1):
            if y:
                hits += 1
                ap += hits / i
        total += ap / total_positives
        count += 1
    return total / count


def gap(pred, labels, k=20):
    items = [(pred[v, c], labels[v, c] > 0) for v in range(len(pred)) for c in kept(pred[v], k)]
    return ap_all_orders(items, int((labels > 0).sum()))


def mean_ap(pred, labels, k=20):
    aps = []
    for c in range(pred.shape[1]):
        positives = int((labels[:, c] > 0).sum())
        if positives == 0:
            continue
        items = [(pred[v, c], labels[v, c] > 0) for v in range(len(pred)) if c in kept(pred[v], k)]
        aps.append(ap_all_orders(items, positives))
    return float(np.mean(aps)) if aps else 0.0


def hit_at_one(pred, labels):
    return float(np.mean([labels[v, kept(pred[v], 1)[0]] for v in range(len(pred))]))


def perr(pred, labels):
    total = 0.0
    for v in range(len(pred)):
        n = int((labels[v] > 0).sum())
        if n == 0:
            continue
        top = kept(pred[v], n)
        total += sum(1 for c in top if pred[v, c] > 0 and labels[v, c] > 0) / n
    return total / len(pred)

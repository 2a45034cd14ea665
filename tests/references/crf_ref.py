"""Float64 brute-force reference of a linear-chain CRF (enumerates all paths).

Independent of `kzoo.layers.crf`: no forward algorithm, no Viterbi. The
sequence a row's CRF sees is the list of its unmasked steps, in order.
"""

import itertools

import numpy as np


def path_score(emissions, tags, transitions, start, end):
    """s(y) for one unpadded sequence: emissions (n, K), tags (n,)."""
    e = np.asarray(emissions, np.float64)
    if len(tags) == 0:
        return 0.0
    s = start[tags[0]] + end[tags[-1]]
    s += sum(e[t, y] for t, y in enumerate(tags))
    s += sum(transitions[a, b] for a, b in zip(tags[:-1], tags[1:]))
    return float(s)


def _valid(emissions, mask):
    emissions = np.asarray(emissions, np.float64)
    if mask is None:
        mask = np.ones(emissions.shape[:2], bool)
    return emissions, np.asarray(mask, bool)


def all_paths(n, num_tags):
    return list(itertools.product(range(num_tags), repeat=n))


def log_likelihood(emissions, tags, mask, transitions, start, end):
    """(batch,) log p(tags) by enumerating every path of each row."""
    emissions, mask = _valid(emissions, mask)
    trans = np.asarray(transitions, np.float64)
    start = np.asarray(start, np.float64)
    end = np.asarray(end, np.float64)
    out = []
    for b in range(emissions.shape[0]):
        e = emissions[b][mask[b]]
        y = [int(v) for v in np.asarray(tags)[b][mask[b]]]
        if len(y) == 0:
            out.append(0.0)
            continue
        scores = np.array(
            [path_score(e, p, trans, start, end) for p in all_paths(len(y), e.shape[1])]
        )
        m = scores.max()
        log_z = m + np.log(np.exp(scores - m).sum())
        out.append(path_score(e, y, trans, start, end) - log_z)
    return np.array(out)


def best_path(emissions, mask, transitions, start, end):
    """(tags (batch, time) with 0 at masked steps, best scores (batch,))."""
    emissions, mask = _valid(emissions, mask)
    trans = np.asarray(transitions, np.float64)
    start = np.asarray(start, np.float64)
    end = np.asarray(end, np.float64)
    tags = np.zeros(emissions.shape[:2], np.int64)
    best = np.zeros(emissions.shape[0])
    for b in range(emissions.shape[0]):
        e = emissions[b][mask[b]]
        if e.shape[0] == 0:
            continue
        paths = all_paths(e.shape[0], e.shape[1])
        scores = [path_score(e, p, trans, start, end) for p in paths]
        i = int(np.argmax(scores))
        tags[b][mask[b]] = paths[i]
        best[b] = scores[i]
    return tags, best

"""Fellegi–Sunter weights for weak evidence, fitted without labels by expectation–maximisation.

A pair of records is compared field by field into a level per field (name: differ / surname only /
similar / same pinyin / same ...). Under Fellegi and Sunter (1969) each level has a probability
m among pairs that are one person and u among pairs that are not; a pair's evidence is the sum of
log2(m/u) over its fields, and with the share of true pairs among candidates (the prior) it is a
calibrated probability that the two are one person. m, u and the prior are what EM estimates from
the candidate pairs themselves, as recordlinkage's ECM classifier does (Winkler 1988; Jaro 1989):
no labels needed. Level 0 of every field is "nothing to compare" (a side missing, or a value too
common to count) and weighs nothing.

Pure code: levels in, probabilities out. The matcher (matcher.py) turns records into levels and
keeps the rules no weight may override (a different ID number, a switchboard, a role mailbox).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

# Levels per field, level 0 (missing / not counted) omitted. Order matters: it is the level index.
LEVELS: dict[str, tuple[str, ...]] = {
    "name": ("differ", "surname", "similar", "pinyin", "same"),
    "company": ("differ", "similar", "same"),
    "domain": ("differ", "same"),
    "email": ("conflict", "from_name", "same"),
    "mobile": ("differ", "masked", "same"),
    "landline": ("same",),
    "address": ("differ", "similar", "same"),
    "city": ("differ", "same"),
    "id_number": ("differ", "typo", "same"),
}
FIELDS = tuple(LEVELS)

# Starting values (and the weights live matching uses until a model is fitted on the customer base):
# m = P(level | same person), u = P(level | two people), among pairs that share a blocking key.
# They were read off the EM fit of the tuning half of tests/identity/data/labelled.csv and of FEBRL
# (bench/identity_quality.py --fit prints a fit), then rounded; EM re-fits them on each batch.
DEFAULT_M: dict[str, tuple[float, ...]] = {
    "name": (0.02, 0.05, 0.13, 0.20, 0.60),
    "company": (0.08, 0.32, 0.60),
    "domain": (0.05, 0.95),
    "email": (0.10, 0.30, 0.60),
    "mobile": (0.25, 0.10, 0.65),
    "landline": (1.0,),
    "address": (0.10, 0.30, 0.60),
    "city": (0.10, 0.90),
    "id_number": (0.04, 0.16, 0.80),
}
DEFAULT_U: dict[str, tuple[float, ...]] = {
    "name": (0.78, 0.07, 0.09, 0.02, 0.04),
    "company": (0.60, 0.15, 0.25),
    "domain": (0.55, 0.45),
    "email": (0.85, 0.10, 0.05),
    "mobile": (0.979, 0.001, 0.02),
    "landline": (1.0,),
    "address": (0.90, 0.09, 0.01),
    "city": (0.75, 0.25),
    "id_number": (0.99, 0.009, 0.001),
}
# A direct line is carried by one person or a few: "same" is the only level, weighed by the
# probability that two random candidates share one (presence: m=0.3 vs u=0.01).
_LANDLINE_PRESENT = (0.30, 0.01)
DEFAULT_PRIOR = 0.1
_FLOOR = 1e-4
_PSEUDO_M, _PSEUDO_U = 20.0, 200.0

Vector = tuple[int, ...]  # one level per field of FIELDS, 0 = nothing to compare


@dataclass(slots=True)
class FSModel:
    m: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(DEFAULT_M))
    u: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(DEFAULT_U))
    prior: float = DEFAULT_PRIOR
    iterations: int = 0  # EM iterations run (0: the defaults)
    pairs: int = 0  # candidate pairs it was fitted on
    _table: dict[str, tuple[float, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._table = {f: self._weights(f) for f in FIELDS}

    def _weights(self, name: str) -> tuple[float, ...]:
        if name == "landline":
            m, u = _LANDLINE_PRESENT
            return (0.0, math.log2(m / u))
        return (0.0,) + tuple(math.log2(max(m, _FLOOR) / max(u, _FLOOR)) for m, u in zip(self.m[name], self.u[name]))

    def weight(self, name: str, level: int) -> float:
        """log2(m/u) of one field's level (0 for level 0)."""
        return self._table[name][level]

    def total(self, vector: Vector) -> float:
        return sum(self._table[f][lv] for f, lv in zip(FIELDS, vector) if lv)

    def probability(self, total: float) -> float:
        """P(same person | evidence) for a summed weight: the prior's log-odds plus the evidence."""
        logit = total + math.log2(self.prior / (1 - self.prior))
        if logit > 60:
            return 1.0
        if logit < -60:
            return 0.0
        return 1.0 / (1.0 + 2.0 ** -logit)

    def to_json(self) -> dict[str, object]:
        return {"prior": round(self.prior, 5), "iterations": self.iterations, "pairs": self.pairs,
                "weights": {f: {lvl: round(self.weight(f, i + 1), 2) for i, lvl in enumerate(LEVELS[f])}
                            for f in FIELDS}}


DEFAULT_MODEL = FSModel()


def fit_em(vectors: Mapping[Vector, int] | Iterable[Vector], start: FSModel | None = None, *,
           max_iter: int = 50, tol: float = 1e-5, fixed: Sequence[str] = ("landline",),
           min_pairs: int = 2000) -> FSModel:
    """m, u and the prior that best explain the candidate pairs' levels (EM, conditional
    independence of the fields given the class). Vectors are counted first: a batch of a million
    pairs has a few hundred distinct ones. Fields in `fixed` keep their starting values (a level
    alone is no pattern EM can learn from)."""
    counts: dict[Vector, int] = dict(vectors) if isinstance(vectors, Mapping) else {}
    if not isinstance(vectors, Mapping):
        for v in vectors:
            counts[v] = counts.get(v, 0) + 1
    start = start or DEFAULT_MODEL
    model = FSModel(dict(start.m), dict(start.u), start.prior)
    total_pairs = sum(counts.values())
    if total_pairs < min_pairs:
        return model  # too few comparisons to learn from (measured: EM on ~1,000 pairs did worse)
    items = list(counts.items())
    iteration = 0
    for iteration in range(1, max_iter + 1):
        # E step: the probability each distinct vector is a match.
        posts: list[float] = []
        for vec, _ in items:
            lm = math.log(model.prior)
            lu = math.log(1 - model.prior)
            for f, lv in zip(FIELDS, vec):
                if lv and f not in fixed:
                    lm += math.log(max(model.m[f][lv - 1], _FLOOR))
                    lu += math.log(max(model.u[f][lv - 1], _FLOOR))
            diff = lu - lm
            posts.append(1.0 / (1.0 + math.exp(diff)) if diff < 700 else 0.0)
        # M step: level frequencies weighted by the posteriors, per class; missing levels skipped.
        match_mass = sum(p * n for p, (_, n) in zip(posts, items))
        new_prior = min(max(match_mass / total_pairs, 1e-6), 0.999)
        m: dict[str, tuple[float, ...]] = {}
        u: dict[str, tuple[float, ...]] = {}
        for fi, f in enumerate(FIELDS):
            if f in fixed:
                m[f], u[f] = model.m[f], model.u[f]
                continue
            k = len(LEVELS[f])
            mm, uu = [0.0] * k, [0.0] * k
            for p, (vec, n) in zip(posts, items):
                lv = vec[fi]
                if lv:
                    mm[lv - 1] += p * n
                    uu[lv - 1] += (1 - p) * n
            # Pseudo-counts at the starting values (a Dirichlet prior): a small batch, or one
            # dominated by a single kind of non-match (namesakes at other companies), cannot
            # swing a field's weights to nonsense.
            m_f = tuple((x + _PSEUDO_M * p0) / (sum(mm) + _PSEUDO_M) for x, p0 in zip(mm, start.m[f]))
            u_f = tuple((x + _PSEUDO_U * p0) / (sum(uu) + _PSEUDO_U) for x, p0 in zip(uu, start.u[f]))
            ratios = [math.log(max(a, _FLOOR) / max(b, _FLOOR)) for a, b in zip(m_f, u_f)]
            if any(later < earlier - 1e-9 for earlier, later in zip(ratios, ratios[1:])) or ratios[-1] <= 0:
                # Levels are ordered from "differ" to "same": a fit in which agreeing weighs less
                # than disagreeing found another pattern than "one person" (EM's label switching
                # on correlated fields): the field keeps its starting weights.
                m_f, u_f = start.m[f], start.u[f]
            m[f], u[f] = m_f, u_f
        change = abs(new_prior - model.prior) + max(
            abs(a - b) for f in FIELDS for a, b in zip(m[f], model.m[f]))
        model = FSModel(m, u, new_prior)
        if change < tol:
            break
    model.iterations, model.pairs = iteration, total_pairs
    return model

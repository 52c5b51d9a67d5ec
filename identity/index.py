"""An in-memory blocking index: match one contact against a million customers in well under a
millisecond or two, by looking up only the customers that share a key with it.

Dicts map each strong identifier (per kind) and each blocking key (pinyin name key, latin name
token, company key, corporate mail domain, landline, address) to the customers carrying it. A
key held by one customer stores the bare id, more store a list: most keys are unique, and a
million small lists would cost more than the records themselves.

Built from the database by service.build_index(store), kept current with add/remove/update
(merge, new customers) and usable on its own for batch dedupe.
"""

from __future__ import annotations

from typing import Any, Iterable

from identity.matcher import (DEFAULT_CONFIG, STRONG_INDEX_KINDS, Id, MatchConfig,
                                         MatchDecision, Matcher, Record)

BLOCK_KINDS = ("name", "token", "company", "domain", "landline", "address", "id_part", "mobile_mask")


def _put(d: dict[str, Any], key: str, rid: Id) -> None:
    held = d.get(key)
    if held is None:
        d[key] = rid
    elif type(held) is list:
        if rid not in held:
            held.append(rid)
    elif held != rid:
        d[key] = [held, rid]


def _drop(d: dict[str, Any], key: str, rid: Id) -> None:
    held = d.get(key)
    if held is None:
        return
    if type(held) is list:
        if rid in held:
            held.remove(rid)
        if len(held) == 1:
            d[key] = held[0]
        elif not held:
            del d[key]
    elif held == rid:
        del d[key]


def _ids(held: Any) -> tuple[Id, ...] | list[Id]:
    if held is None:
        return ()
    return held if type(held) is list else (held,)


def _size(held: Any) -> int:
    if held is None:
        return 0
    return len(held) if type(held) is list else 1


class IdentityIndex:
    def __init__(self, config: MatchConfig | None = None) -> None:
        self.config = config or DEFAULT_CONFIG
        self.matcher = Matcher(self.config)
        self.records: dict[Id, Record] = {}
        self.strong: dict[str, dict[str, Any]] = {k: {} for k in STRONG_INDEX_KINDS}
        self.blocks: dict[str, dict[str, Any]] = {k: {} for k in BLOCK_KINDS}
        self.distinct: dict[Id, set[Id]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, rid: Id) -> bool:
        return rid in self.records

    # ---- maintenance -------------------------------------------------------------------------

    def add(self, record: Record) -> None:
        if record.id in self.records:
            self.remove(record.id)
        self.records[record.id] = record
        for kind, value in record.strong_keys():
            _put(self.strong[kind], value, record.id)
        for kind, key in record.block_keys():
            _put(self.blocks[kind], key, record.id)

    def add_many(self, records: Iterable[Record]) -> None:
        for record in records:
            self.add(record)

    def remove(self, rid: Id) -> Record | None:
        record = self.records.pop(rid, None)
        if record is None:
            return None
        for kind, value in record.strong_keys():
            _drop(self.strong[kind], value, rid)
        for kind, key in record.block_keys():
            _drop(self.blocks[kind], key, rid)
        return record

    update = add

    def add_distinct(self, a: Id, b: Id) -> None:
        self.distinct.setdefault(a, set()).add(b)
        self.distinct.setdefault(b, set()).add(a)

    def is_distinct(self, a: Id, b: Id) -> bool:
        return b in self.distinct.get(a, ())

    # ---- lookups -----------------------------------------------------------------------------

    def holders(self, kind: str, value: str) -> tuple[Id, ...] | list[Id]:
        """Customers holding a strong identifier (kind as in STRONG_INDEX_KINDS)."""
        return _ids(self.strong[kind].get(value))

    def freq(self, criterion: str, key: str, exclude: Id | None = None) -> int:
        d = self.strong[criterion[7:]] if criterion.startswith("strong:") else self.blocks[criterion]
        held = d.get(key)
        n = _size(held)
        if exclude is not None and n and exclude in _ids(held):
            n -= 1
        return n

    def candidate_ids(self, probe: Record) -> set[Id]:
        c = self.config
        found: set[Id] = set()
        large: list[Any] = []
        # A block past its criterion's frequency cap carries no evidence of its own: its members
        # matter only where another key is shared too, so it is only intersected, never read whole.
        # A name token ("smith", "wei") is a blocking key only, no evidence: read up to block_limit.
        limits = {"name": c.name_cap, "token": c.block_limit, "landline": c.landline_cap, "address": c.address_cap,
                  "company": c.company_cap, "domain": c.domain_cap, "id_part": 20,
                  "mobile_mask": c.strong_cap}
        for kind, key in probe.block_keys():
            held = self.blocks[kind].get(key)
            n = _size(held)
            if n == 0:
                continue
            if n <= c.block_limit and n <= limits[kind] + (1 if probe.id in self.records else 0):
                found.update(_ids(held))
            else:
                large.append(held)
        if len(large) >= 2:
            # A common name and a big company: only the records carrying both are candidates.
            large.sort(key=len)
            for i in range(len(large)):
                for j in range(i + 1, len(large)):
                    a, b = large[i], large[j]
                    if len(a) + len(b) > c.intersect_limit:
                        continue
                    small = set(a)
                    found.update(x for x in b if x in small)
        found.discard(probe.id)
        return found

    def match(self, probe: Record) -> MatchDecision:
        """The decision for one probe against everything indexed (the probe itself excluded)."""
        c = self.config
        strong_hits: dict[Id, list[tuple[str, str]]] = {}
        strong_capped: list[str] = []
        for kind, value in probe.strong_keys():
            holders = [h for h in _ids(self.strong[kind].get(value)) if h != probe.id]
            if len(holders) > c.strong_cap:
                holders = self.matcher.agreeing_holders(probe, [self.records[h] for h in holders if h in self.records])
                if not holders:
                    strong_capped.append(kind)
                    continue
            for holder in holders:
                strong_hits.setdefault(holder, []).append((kind, value))
        ids = self.candidate_ids(probe)
        ids.update(strong_hits)
        if len(ids) > c.max_candidates:
            ids = set(list(strong_hits) + [i for i in ids if i not in strong_hits][: c.max_candidates])
        records = {i: self.records[i] for i in ids if i in self.records}
        pid = probe.id

        def freq(criterion: str, key: str) -> int:
            return self.freq(criterion, key, exclude=pid)

        return self.matcher.decide(probe, strong_hits=strong_hits, records=records, freq=freq,
                                   is_distinct=self.is_distinct, strong_capped=strong_capped)

    def stats(self) -> dict[str, Any]:
        return {"records": len(self.records),
                "strong_keys": {k: len(v) for k, v in self.strong.items()},
                "block_keys": {k: len(v) for k, v in self.blocks.items()}}

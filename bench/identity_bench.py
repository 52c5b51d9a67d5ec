"""Identity matching at scale: one incoming contact against 100k and 1M synthetic customers.

    .venv/bin/python bench/identity_bench.py            # 100k and 1M (about 2 minutes, ~1.5 GB)
    .venv/bin/python bench/identity_bench.py --quick    # 10k and 100k
    .venv/bin/python bench/identity_bench.py --size 1000000 --probes 2000   # the 1M figure alone

Prints JSON: per size, the index build time, its memory (RSS growth while building, and per
customer), and p50/p99/max latency of (a) normalising the raw contact and matching it, (b) the
match alone; plus baselines measured in the same run: a bare dict lookup, and a naive scan that
scores every record of a 10k list (the cost per probe that blocking avoids: at 1M it would be
100x that).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from identity.company import company_key  # noqa: E402
from identity.index import IdentityIndex  # noqa: E402
from identity.matcher import Matcher, build_record  # noqa: E402
from identity.names import parse_name  # noqa: E402

SURNAMES = ("王" * 16 + "李" * 15 + "张" * 14 + "刘" * 10 + "陈" * 9 + "杨" * 5 + "黄" * 4 + "赵" * 4 + "吴" * 4
            + "周" * 4 + "徐" * 3 + "孙" * 3 + "马" * 3 + "朱" * 3 + "胡" * 3 + "郭" * 3 + "何" * 2 + "高" * 2
            + "林" * 2 + "罗" * 2 + "郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范"
              "金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤欧阳")
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建国志斌宇浩凯晨欣怡佳琪梓"
         "涵子轩博文雨婷思雅俊峰海波家豪宏飞丹颖莉晶雪梅慧倩晓东旭阳春林鑫磊成龙天宁新民德亮永健世荣嘉诚立")
BRANDS = ("华为腾讯阿里百度京东美团小米联想海尔格力万科碧桂园中兴大疆比亚迪宁德时代顺丰蔚来理想网易字节快手拼多多"
          "携程滴滴金山用友浪潮紫光长城奇瑞吉利长安上汽三一徐工中联海信创维TCL美的方太老板九阳苏泊尔鑫达恒信"
          "宏达瑞丰汇通盛世天成博远华信金诚永盛鼎新众合智远星辰")
DESCRIPTORS = ("科技", "信息技术", "网络科技", "贸易", "实业", "电子", "软件", "智能科技", "新材料", "物流", "")
SUFFIXES = ("有限公司", "股份有限公司", "有限责任公司", "集团有限公司", "")
CITIES = ("上海", "北京", "深圳", "广州", "杭州", "南京", "苏州", "成都", "武汉", "西安", "重庆", "天津")
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
                   "155", "156", "157", "158", "159", "176", "177", "178", "180", "181", "182", "183",
                   "185", "186", "187", "188", "189", "198", "199")
AREA = ("021", "010", "0755", "020", "0571", "025", "0512", "028", "027", "029", "023", "022")


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Synth:
    def __init__(self, n: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.n = n
        self.n_companies = max(50, n // 20)
        self._names: list[str] | None = None
        brands = list(BRANDS)
        rng = self.rng
        self.companies = []
        for i in range(self.n_companies):
            brand = "".join(rng.sample(brands, 2)) + (str(i) if i >= 2000 else "")
            self.companies.append((rng.choice(CITIES), brand, rng.choice(DESCRIPTORS), rng.choice(SUFFIXES)))

    def mobile(self) -> str:
        return self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def name(self) -> str:
        # Names repeat in real customer lists: draw from a pool a quarter the size of the base.
        if self._names is None:
            self._names = [self.fresh_name() for _ in range(max(1000, self.n // 4))]
        return self._names[int(len(self._names) * self.rng.random() ** 1.5)]

    def fresh_name(self) -> str:
        rng = self.rng
        surname = rng.choice(SURNAMES)
        if surname == "欧":
            surname = "欧阳"
        given = rng.choice(GIVEN) if rng.random() < 0.3 else rng.choice(GIVEN) + rng.choice(GIVEN)
        return surname + given

    def company_of(self) -> int:
        return int(self.n_companies * self.rng.random() ** 2)

    def company_text(self, idx: int, variant: bool = False) -> str:
        city, brand, desc, suffix = self.companies[idx]
        if variant:
            return f"{city}市{brand}{desc}有限公司" if self.rng.random() < 0.5 else f"{brand}{desc}（{city}）有限公司"
        return f"{city}{brand}{desc}{suffix}"

    def switchboard(self, idx: int) -> str:
        return f"{AREA[idx % len(AREA)]}-6{idx % 10_000_000:07d}"

    def customer(self, cid: int) -> dict:
        rng = self.rng
        comp = self.company_of()
        row = {"id": cid, "name": self.name(), "company": self.company_text(comp), "phones": [self.mobile()],
               "emails": [], "unionids": [], "address": "", "comp": comp}
        r = rng.random()
        if r < 0.35:
            row["emails"].append(f"u{cid}@{company_key(row['company']) or 'corp'}.com")
        elif r < 0.5:
            row["emails"].append(f"{rng.randrange(10**5, 10**10)}@qq.com")
        if rng.random() < 0.15:
            row["phones"].append(self.switchboard(comp))
        if rng.random() < 0.1:
            row["unionids"].append("o" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", k=27)))
        if rng.random() < 0.2:
            row["address"] = f"{self.companies[comp][0]}市某区{rng.choice(GIVEN)}{rng.choice(GIVEN)}路{rng.randrange(1, 999)}号"
        return row


def build(n: int, seed: int = 7) -> tuple[IdentityIndex, list[dict], dict]:
    synth = Synth(n, seed)
    gc.collect()
    gc.disable()  # millions of small tuples: the cyclic GC only slows the build down
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    index = IdentityIndex()
    keep: list[dict] = []
    keep_every = max(1, n // 5000)
    for cid in range(1, n + 1):
        row = synth.customer(cid)
        index.add(build_record(cid, name=row["name"], company=row["company"], phones=row["phones"],
                               emails=row["emails"], unionids=row["unionids"], address=row["address"]))
        if cid % keep_every == 0:
            keep.append(row)
    build_s = time.perf_counter() - t0
    gc.enable()
    gc.collect()
    # A long-lived index: move it out of the collector's generations, as a server should after
    # building it (gc.freeze), or every full collection walks a million records mid-request.
    gc.freeze()
    rss1 = rss_bytes()
    return index, keep, {"customers": n, "build_seconds": round(build_s, 2),
                         "index_rss_mb": round((rss1 - rss0) / 2**20, 1),
                         "bytes_per_customer": int((rss1 - rss0) / n), "synth": synth}


def probes(synth: Synth, kept: list[dict], count: int, seed: int = 11) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        kind = i % 10
        if kind < 4 and kept:  # a known customer's mobile in another spelling, name in pinyin
            row = rng.choice(kept)
            m = row["phones"][0]
            tokens = parse_name(row["name"]).tokens
            pinyin = " ".join(t.title() for t in reversed(tokens))  # "Xiaoming Wang"
            out.append({"name": row["name"] if kind % 2 else pinyin,
                        "phones": [f"+86 {m[:3]}-{m[3:7]}-{m[7:]}"], "company": ""})
        elif kind < 7 and kept:  # a known customer by name and a company variant only
            row = rng.choice(kept)
            out.append({"name": row["name"], "phones": [], "company": synth.company_text(row["comp"], True)})
        else:  # somebody new
            comp = synth.company_of()
            out.append({"name": synth.name(), "phones": [synth.mobile()], "company": synth.company_text(comp, True)})
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(index: IdentityIndex, probe_rows: list[dict]) -> dict:
    """Wall time per probe, and the thread's CPU time for the same call: on a shared machine the
    wall-clock tail is mostly other processes' time slices, the CPU time is what matching costs."""
    full, match_only, cpu = [], [], []
    candidates = []
    kinds = {"same": 0, "possible": 0, "new": 0}
    for p in probe_rows[:200]:  # warm-up: caches, branch predictors
        index.match(build_record(None, name=p["name"], company=p["company"], phones=p["phones"]))
    for p in probe_rows:
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        rec = build_record(None, name=p["name"] + "", company=p["company"], phones=p["phones"])
        t1 = time.perf_counter_ns()
        decision = index.match(rec)
        t2 = time.perf_counter_ns()
        c1 = time.thread_time_ns()
        full.append((t2 - t0) / 1e6)
        match_only.append((t2 - t1) / 1e6)
        cpu.append((c1 - c0) / 1e6)
        kinds[decision.kind] += 1
        candidates.append(len(index.candidate_ids(rec)))

    def stats(values: list[float]) -> dict:
        return {"p50": round(pct(values, 0.5), 3), "p99": round(pct(values, 0.99), 3),
                "max": round(max(values), 3), "mean": round(statistics.fmean(values), 3)}

    return {
        "probes": len(probe_rows), "decisions": kinds,
        "normalise_and_match_ms": stats(full),
        "match_only_ms": stats(match_only),
        "normalise_and_match_cpu_ms": stats(cpu),
        "candidates_scored": {"p50": pct(candidates, 0.5), "p99": pct(candidates, 0.99), "max": max(candidates)},
    }


def baselines(index: IdentityIndex, probe_rows: list[dict]) -> dict:
    keys = list(index.strong["mobile"].keys())[:100_000]
    rng = random.Random(3)
    sample = [rng.choice(keys) for _ in range(200_000)]
    d = index.strong["mobile"]
    t0 = time.perf_counter_ns()
    for k in sample:
        d.get(k)
    dict_ns = (time.perf_counter_ns() - t0) / len(sample)
    # Naive scan: score the probe against every one of 10k records.
    matcher = Matcher(index.config)
    records = list(index.records.values())[:10_000]
    times = []
    for p in probe_rows[:30]:
        rec = build_record(None, name=p["name"], company=p["company"], phones=p["phones"])
        t0 = time.perf_counter_ns()
        for other in records:
            matcher.score(rec, other, lambda c, k: 1)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return {"dict_lookup_ns": round(dict_ns, 1), "naive_scan_10k_ms_p50": round(statistics.median(times), 2),
            "naive_scan_1m_ms_extrapolated": round(statistics.median(times) * 100, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k and 100k instead of 100k and 1M")
    parser.add_argument("--size", type=int, action="append",
                        help="customers in the index (repeatable), e.g. --size 1000000 alone for the 1M figure")
    parser.add_argument("--probes", type=int, default=3000)
    args = parser.parse_args()
    sizes = tuple(args.size) if args.size else (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    report: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                "platform": platform.platform(),
                                "load_average_at_start": os.getloadavg()}, "sizes": {}}
    started = time.perf_counter()
    for n in sizes:
        index, kept, info = build(n)
        synth = info.pop("synth")
        probe_rows = probes(synth, kept, args.probes)
        info.update(measure(index, probe_rows))
        info["index_stats"] = index.stats()
        if n == sizes[-1]:
            report["baseline"] = baselines(index, probe_rows)
            report["baseline"]["ratio_naive_1m_over_indexed_p50"] = round(
                report["baseline"]["naive_scan_1m_ms_extrapolated"] / max(info["match_only_ms"]["p50"], 1e-6))
        report["sizes"][str(n)] = info
        del index, kept, synth, probe_rows
        gc.unfreeze()
        gc.collect()
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

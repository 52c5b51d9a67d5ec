"""Generator of b2b_cn.csv beside it: Chinese B2B customers as sales data spells them (seeded, so it
rewrites the same file):

    .venv/bin/python tests/identity/data/make_b2b_cn.py

Each person is entered one to four ways, as a CRM row, a WeChat remark, a business card, an expo
lead; with every kind of evidence issue #21 names: a second mailbox at the company's own domain
(w.zhang@ beside zhangwei@), pinyin with a typo or given name first, companies with the city in
brackets, without legal form or as a bare core name, remark noise, a changed mobile. Hard
negatives: colleagues sharing a switchboard and a role mailbox (sales@), two 张伟 at one company
(zhangwei@ and zhangwei2@), common names at other companies. `split` halves the data by
company: thresholds are tuned on "tune" and reported on "test". Pinyin comes from pypinyin
directly, not from leadbot's name code, so a bug there cannot hide itself in the data.
"""
import csv
import random
from pathlib import Path

from pypinyin import Style, lazy_pinyin

rng = random.Random(20261204)
OUT = Path(__file__).resolve().parent / "b2b_cn.csv"
COLUMNS = ["id", "name", "phone", "email", "company", "title", "wechat_unionid", "wecom_external_userid",
           "id_number", "address", "city", "entity", "split"]
SURN = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈姚卢姜崔钟谭陆汪范金"
GIV = "芳娜敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚英华玉萍红玲芬燕彬鹏辉志斌宇浩凯晨欣怡佳琪涵子轩博文雨婷思雅俊峰海波家豪宏飞丹颖莉晶雪梅慧倩晓东旭阳春林鑫"
COMMON = ["张伟", "王伟", "王芳", "李伟", "李娜", "王静", "张敏", "李静", "刘洋", "王磊"]
BRANDS = ["恒信", "鑫达", "宏达", "瑞丰", "天成", "汇通", "博远", "星辰", "华兴", "正泰", "新宇", "立达", "金盛", "安泰",
          "中科", "海普", "德美", "凯睿", "云帆", "启明", "光合", "泰和", "盛源", "嘉禾", "卓越", "远航", "众合", "联创",
          "华创", "拓维", "锐捷", "捷通", "同方", "恒达", "永盛", "长河", "青松", "蓝海", "东方", "弘毅"]
TRADES = [("科技", "Technology"), ("电子科技", "Electronics"), ("精密机械", "Precision Machinery"), ("贸易", "Trading"),
          ("新材料", "New Materials"), ("软件", "Software"), ("物流", "Logistics"), ("咨询", "Consulting"),
          ("智能科技", "Intelligent Technology"), ("医疗器械", "Medical Devices")]
CITIES = ["上海", "北京", "深圳", "广州", "杭州", "苏州", "成都", "南京", "武汉", "西安", "天津", "重庆"]
AREA = {"上海": "021", "北京": "010", "深圳": "0755", "广州": "020", "杭州": "0571", "苏州": "0512", "成都": "028",
        "南京": "025", "武汉": "027", "西安": "029", "天津": "022", "重庆": "023"}
STREETS = ["张江路", "科苑路", "天府大道", "中山路", "解放路", "人民路", "建国路", "南京西路", "文三路", "高新大道"]
TITLES = ["销售总监", "采购经理", "采购负责人", "总经理", "技术总监", "财务经理", "项目经理", "工程师"]
PREF = ["138", "139", "136", "137", "150", "151", "158", "186", "188", "189", "177", "199", "133", "135"]
TYPOS = {"wei": "wie", "ming": "mign", "jing": "jign", "zhang": "zahng", "wang": "wnag", "li": "il", "hua": "hau",
         "xiao": "xaio", "hong": "hogn", "yang": "yagn", "chen": "chne", "liu": "lui"}

used_mobiles: set[str] = set()
used_mails: set[str] = set()


def mailbox(candidates: list[str], domain: str) -> str:
    """A mail system never hands one address to two people: the first free form, else a numbered one."""
    for local in candidates + [f"{candidates[0]}{k}" for k in range(2, 9)]:
        address = f"{local}@{domain}"
        if address not in used_mails:
            used_mails.add(address)
            return address
    raise RuntimeError("no free mailbox")
used_names: set[str] = set()


def py(name: str) -> tuple[str, str]:
    return lazy_pinyin(name[0], style=Style.NORMAL)[0], "".join(lazy_pinyin(name[1:], style=Style.NORMAL))


def mobile() -> str:
    while True:
        m = rng.choice(PREF) + f"{rng.randrange(10**8):08d}"
        if m not in used_mobiles:
            used_mobiles.add(m)
            return m


def fmt_mobile(m: str) -> str:
    return rng.choice([m, f"+86 {m[:3]} {m[3:7]} {m[7:]}", f"{m[:3]}-{m[3:7]}-{m[7:]}", f"86 {m}", f"（+86）{m}"])


def fresh_name() -> str:
    while True:
        n = rng.choice(SURN) + "".join(rng.choice(GIV) for _ in range(rng.choice([1, 2, 2, 2])))
        if n not in used_names and n not in COMMON:
            used_names.add(n)
            return n


def typo(word: str) -> str:
    for good, bad in TYPOS.items():
        if good in word:
            return word.replace(good, bad, 1)
    i = rng.randrange(len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


class Company:
    def __init__(self, n: int) -> None:
        # Past the first 40, brands are recombined (华兴 + 正泰 -> 华泰): names stay company-like.
        self.brand = BRANDS[n] if n < len(BRANDS) else BRANDS[n % len(BRANDS)][0] + BRANDS[(n * 7 + 3) % len(BRANDS)][1]
        self.trade, self.trade_en = TRADES[(n * 7) % len(TRADES)]
        self.city = CITIES[(n * 5) % len(CITIES)]
        bp = "".join(lazy_pinyin(self.brand, style=Style.NORMAL))
        self.domain = f"{bp}{'' if n < len(BRANDS) else 'group'}.{'com' if n % 3 else 'com.cn'}"
        self.brand_py = bp
        self.legal = f"{self.city}{self.brand}{self.trade}有限公司"
        core = self.legal.removeprefix(self.city).removesuffix("有限公司")
        self.variants = [self.legal, f"{core}({self.city})有限公司", f"{core}（{self.city}）有限公司", f"{core}有限公司",
                         core, f"{self.brand_py.title()} {self.trade_en} Co., Ltd."]
        self.switchboard = f"{AREA[self.city]}-{rng.randrange(5, 9)}{rng.randrange(10**7):07d}"
        self.address = f"{self.city}市{rng.choice(STREETS)}{rng.randrange(1, 999)}号{rng.randrange(1, 30)}楼"

    def variant(self) -> str:
        return rng.choice(self.variants[1:])


rows: list[dict[str, str]] = []


def add(entity: str, split: str, **kw: str) -> None:
    row = {c: "" for c in COLUMNS}
    row.update(id=f"C{len(rows) + 1:04d}", entity=entity, split=split, **kw)
    rows.append(row)


def person_records(entity: str, split: str, co: Company, name: str, *, personal_mail: str = "", n_records: int = 0) -> None:
    s, g = py(name)
    m = mobile()
    if personal_mail:
        used_mails.add(personal_mail)
    mail = personal_mail or mailbox(rng.sample([f"{s}{g}", f"{g}.{s}", f"{s}.{g}"], 3), co.domain)
    direct = f"{AREA[co.city]}-{rng.randrange(5, 9)}{rng.randrange(10**7):07d}"
    forms = ["crm", "remark", "card", "expo", "domain_only", "honorific"]
    weights = [5, 4, 4, 3, 3, 1]
    k = n_records or rng.choice([1, 2, 2, 3, 3, 4])
    chosen = ["crm"] + rng.choices(forms[1:], weights[1:], k=k - 1) if k > 1 else ["crm"]
    for form in chosen:
        title = rng.choice(TITLES)
        if form == "crm":
            add(entity, split, name=name, phone=fmt_mobile(m), email=mail if rng.random() < 0.7 else "",
                company=co.legal, title=title, city=co.city, address=co.address if rng.random() < 0.3 else "")
        elif form == "remark":
            shown = rng.choice([f"{name}-{co.city}{title}", f"{name}(微信备注:上周聊过报价)", f"A03-{name}-{co.brand}",
                                f"{name} {co.brand}"])
            add(entity, split, name=shown, phone=fmt_mobile(m) if rng.random() < 0.6 else "", company=co.variant())
        elif form == "card":
            order = rng.random()
            first, last = (g.title(), s.title()) if order < 0.5 else (s.title(), g.title())
            if rng.random() < 0.35:
                first, last = (typo(first.lower()).title(), last) if rng.random() < 0.5 else (first, typo(last.lower()).title())
            other = mailbox(rng.sample([f"{g[0]}.{s}", f"{s}{g[0]}", f"{g[0]}{s}", f"{s}.{g}"], 4), co.domain)
            add(entity, split, name=f"{first} {last}", email=other, company=rng.choice([co.variants[5], co.variant()]),
                phone=direct, title=title)
        elif form == "expo":
            add(entity, split, name=name, phone=fmt_mobile(mobile()), company=co.variants[4], city=co.city,
                email=mail)
        elif form == "domain_only":
            other = mailbox(rng.sample([f"{g[0]}.{s}", f"{s}{g[0]}", f"{g}.{s}"], 3), co.domain)
            add(entity, split, name=rng.choice([name, f"{s.title()} {g.title()}", f"{g.title()} {s.title()}"]),
                email=other)
        elif form == "honorific":
            add(entity, split, name=rng.choice(["总", "工", "经理"]).join([name[0], ""]) + f"-{co.brand}",
                phone=f"{m[:3]}****{m[7:]}", company=co.variants[4])


def build() -> None:
    e = 0
    for n in range(60):
        co = Company(n)
        split = "tune" if n % 2 == 0 else "test"
        for _ in range(rng.choice([1, 2, 3])):
            e += 1
            person_records(f"E{e:04d}", split, co, fresh_name())
        # Hard negatives at the same company: colleagues on the switchboard and a role mailbox.
        role = rng.choice(["sales", "info", "hr", "purchase", "kefu"]) + "@" + co.domain
        for _ in range(rng.choice([2, 3])):
            e += 1
            add(f"E{e:04d}", split, name=fresh_name(), phone=co.switchboard, email=role, company=co.variant(),
                title=rng.choice(TITLES))
        if n % 3 == 0:
            # Two people with one common name at one company, told apart only by their mailboxes.
            common = rng.choice(COMMON)
            s, g = py(common)
            for k, local in enumerate((f"{s}{g}", f"{s}{g}2")):
                e += 1
                person_records(f"E{e:04d}", split, co, common, personal_mail=f"{local}@{co.domain}", n_records=2)
        if n % 4 == 1:
            # The same common name at another company: a different person.
            e += 1
            person_records(f"E{e:04d}", split, Company(n + 200), rng.choice(COMMON), n_records=1)


build()
with open(OUT, "w", newline="", encoding="utf-8") as fh:
    writer = csv.DictWriter(fh, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
print(f"{len(rows)} rows, {len({r['entity'] for r in rows})} people -> {OUT}")

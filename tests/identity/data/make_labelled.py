"""Generator of labelled.csv beside it (seeded, so it rewrites the same file):

    .venv/bin/python tests/identity/data/make_labelled.py

Pinyin comes from pypinyin directly (with the usual surname readings), not from leadbot's own
name code, so that a bug there cannot hide itself in the data. The hard cases are written out
by hand in section 4.
"""
import csv
import random
from pathlib import Path
from types import SimpleNamespace

from pypinyin import Style, lazy_pinyin

rng = random.Random(20261123)
OUT = Path(__file__).resolve().parent / "labelled.csv"
SURNAME_READINGS = {"曾": "zeng", "单": "shan", "解": "xie", "仇": "qiu", "区": "ou", "查": "zha", "乐": "yue"}


def parse_name(name):
    """Surname-first toneless pinyin tokens of a Chinese name: ("wang", "xiaoming")."""
    surname = SURNAME_READINGS.get(name[0]) or lazy_pinyin(name[0], style=Style.NORMAL)[0]
    given = "".join(lazy_pinyin(name[1:], style=Style.NORMAL)).replace("v", "u")
    return SimpleNamespace(tokens=(surname, given))

COMPANIES = [  # (canonical, variants)
    ("华为技术有限公司", ["华为技术", "深圳市华为技术有限公司", "华为技术有限公司上海分公司", "Huawei Technologies Co., Ltd.", "华为技术（深圳）有限公司"]),
    ("腾讯科技（深圳）有限公司", ["腾讯科技(深圳)有限公司", "深圳市腾讯科技有限公司", "腾讯科技"]),
    ("阿里巴巴（中国）有限公司", ["阿里巴巴集团", "阿里巴巴(中国)有限公司", "杭州阿里巴巴有限公司"]),
    ("北京字节跳动科技有限公司", ["字节跳动科技有限公司", "北京字节跳动科技", "字节跳动科技（北京）有限公司"]),
    ("上海鑫达精密机械有限公司", ["鑫达精密机械有限公司", "上海鑫达精密机械", "上海市鑫达精密机械有限公司"]),
    ("苏州恒信电子科技有限公司", ["恒信电子科技有限公司", "苏州市恒信电子科技有限公司", "恒信电子科技（苏州）有限公司"]),
    ("广州宏达贸易有限公司", ["宏达贸易有限公司", "广州市宏达贸易有限公司", "宏达贸易"]),
    ("杭州瑞丰新材料股份有限公司", ["瑞丰新材料股份有限公司", "杭州瑞丰新材料有限公司", "瑞丰新材料"]),
    ("成都天成软件有限公司", ["天成软件有限公司", "成都市天成软件有限公司", "天成软件（成都）有限公司"]),
    ("南京汇通物流有限公司", ["汇通物流有限公司", "南京市汇通物流有限公司", "汇通物流"]),
    ("小米科技有限责任公司", ["小米科技", "北京小米科技有限责任公司", "Xiaomi Inc."]),
    ("深圳市大疆创新科技有限公司", ["大疆创新科技有限公司", "大疆创新科技", "DJI 大疆创新科技有限公司"]),
    ("武汉博远咨询有限公司", ["博远咨询有限公司", "武汉市博远咨询有限公司", "博远咨询"]),
    ("西安星辰智能科技有限公司", ["星辰智能科技有限公司", "西安市星辰智能科技有限公司", "星辰智能科技"]),
]
DOMAINS = {"华为技术有限公司": "huawei.com", "腾讯科技（深圳）有限公司": "tencent.com", "阿里巴巴（中国）有限公司": "alibaba-inc.com",
           "北京字节跳动科技有限公司": "bytedance.com", "小米科技有限责任公司": "xiaomi.com", "深圳市大疆创新科技有限公司": "dji.com"}
SURN = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈姚卢姜崔钟谭陆汪范金"
GIV = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚英华玉萍红玲芬燕彬鹏辉建国志斌宇浩凯晨欣怡佳琪涵子轩博文雨婷思雅俊峰海波家豪宏飞丹颖莉晶雪梅慧倩晓东旭阳春林鑫"
CITY = {"华为": "深圳", "腾讯": "深圳", "阿里": "杭州", "字节": "北京", "上海": "上海", "苏州": "苏州", "广州": "广州", "杭州": "杭州", "成都": "成都", "南京": "南京", "小米": "北京", "深圳": "深圳", "武汉": "武汉", "西安": "西安"}
PREF = ["138", "139", "136", "137", "150", "151", "158", "186", "188", "189", "177", "199", "133", "135"]
used_names = set()
def mobile():
    return rng.choice(PREF) + f"{rng.randrange(10**8):08d}"
def fresh_name(given_len=None):
    while True:
        n = rng.choice(SURN) + "".join(rng.choice(GIV) for _ in range(given_len or rng.choice([1, 2, 2, 2])))
        if n not in used_names:
            used_names.add(n); return n
def pinyin(name, order):
    t = parse_name(name).tokens
    s, g = t[0].title(), "".join(t[1:]).title()
    return {"sg": f"{s} {g}", "gs": f"{g} {s}", "upper": f"{s.upper()} {g.upper()}", "split": f"{s} {' '.join(x.title() for x in [g.lower()])}"}[order]
def fmt_mobile(m, style):
    return {0: m, 1: f"+86 {m[:3]} {m[3:7]} {m[7:]}", 2: f"0086-{m}", 3: f"{m[:3]}-{m[3:7]}-{m[7:]}", 4: f"86 {m}", 5: f"（+86）{m}", 6: f"{m[:3]} {m[3:7]} {m[7:]}"}[style]
def city_of(company):
    for k, v in CITY.items():
        if k in company: return v
    return ""
def unionid():
    return "o" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", k=27))
def idnum():
    base = f"{rng.choice(['110105','310104','440305','330106','510107'])}{rng.randint(1965,2000)}{rng.randint(1,12):02d}{rng.randint(1,28):02d}{rng.randrange(1000):03d}"
    w = (7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2); c = "10X98765432"
    return base + c[sum(int(d)*x for d, x in zip(base, w)) % 11]

rows = []
def add(entity, **kw):
    row = {"id": f"R{len(rows)+1:03d}", "name": "", "phone": "", "email": "", "company": "", "title": "", "wechat_unionid": "",
           "wecom_external_userid": "", "id_number": "", "address": "", "city": "", "entity": entity}
    row.update(kw); rows.append(row)

e = 0
# 1. entities with strong-identifier duplicates in many spellings
for i in range(34):
    e += 1; ent = f"E{e:03d}"
    comp, variants = rng.choice(COMPANIES)
    name = fresh_name(); m = mobile(); dom = DOMAINS.get(comp)
    email = f"{parse_name(name).tokens[0]}{rng.randrange(100)}@{dom}" if dom else f"{rng.randrange(10**5, 10**9)}@qq.com"
    uid = unionid() if i % 3 == 0 else ""
    add(ent, name=name, phone=m, email=email if i % 2 == 0 else "", company=comp, title=rng.choice(["采购经理", "总监", "工程师", "", "CEO"]), city=city_of(comp), wechat_unionid=uid)
    kind = i % 6
    if kind == 0:   # pinyin name, formatted phone
        add(ent, name=pinyin(name, rng.choice(["sg", "gs", "upper"])), phone=fmt_mobile(m, rng.randint(1, 6)), company=rng.choice(variants))
    elif kind == 1:  # remark noise, email in capitals
        add(ent, name=f"{name}（微信备注：{comp[:4]}）", email=email.upper() if i % 2 == 0 else "", phone=fmt_mobile(m, rng.randint(1, 6)), company="")
    elif kind == 2:  # homophone typo + mobile + another number (switchboard)
        typo = name[0] + "".join({"明": "铭", "伟": "玮", "静": "婧", "丽": "莉", "华": "桦", "军": "君", "杰": "洁", "涛": "韬", "敏": "闵", "林": "琳"}.get(c, c) for c in name[1:])
        add(ent, name=typo, phone=f"{fmt_mobile(m, 3)} / 021-6{rng.randrange(10**7):07d}", company=rng.choice(variants), city=city_of(comp))
    elif kind == 3:  # WeCom export: external_userid and unionid, sort-prefix remark name
        add(ent, name=f"A{rng.randint(1,9)}-{name}-{rng.choice(['销售部', '采购部', comp[:2]])}", wechat_unionid=uid or "", phone=fmt_mobile(m, 2) if not uid else "", wecom_external_userid=f"wm{rng.randrange(10**9)}")
    elif kind == 4:  # id number in both, name with emoji, different phone formats
        idn = idnum(); rows[-1]["id_number"] = idn
        add(ent, name=f"{name}🌸", id_number=idn.lower(), company=rng.choice(variants))
        add(ent, name=pinyin(name, "gs"), phone=fmt_mobile(m, 5), company=rng.choice(variants))
    else:  # email only, lower/upper + full-width
        mail = f"{parse_name(name).tokens[0]}.{i}@{dom or 'example.cn'}"
        rows[-1]["email"] = mail
        add(ent, name=name, email=" " + mail.upper() + " ", company=rng.choice(variants))

# 2. entities whose duplicates only have weak evidence (name + company variant / address)
for i in range(14):
    e += 1; ent = f"E{e:03d}"
    comp, variants = COMPANIES[i % len(COMPANIES)]
    name = fresh_name(2)
    addr = f"{city_of(comp) or '上海'}市某区{rng.choice(GIV)}{rng.choice(GIV)}路{rng.randrange(1,999)}号{rng.randint(1,30)}楼"
    add(ent, name=name, company=comp, address=addr if i % 2 else "", city=city_of(comp))
    if i % 3 == 0:
        add(ent, name=name, company=comp + ("" if comp.endswith("公司") else ""), city=city_of(comp))  # exact company
    elif i % 3 == 1:
        add(ent, name=name, company=rng.choice(variants), address=addr.replace("市", " ").replace("号", " 号"))  # same address
    else:
        add(ent, name=pinyin(name, "gs"), company=rng.choice(variants))  # pinyin + company variant

# 3. honorific-only remarks of known customers (only suggestible, never auto-merged)
for i in range(6):
    e += 1; ent = f"E{e:03d}"
    comp = [c for c in COMPANIES if c[0] in DOMAINS][i % 6][0]
    name = fresh_name(2)
    direct = f"0755-2{rng.randrange(10**6):06d}8"
    add(ent, name=name, company=comp, email=f"{parse_name(name).tokens[1]}@{DOMAINS[comp]}", phone=f"{mobile()} / {direct}")
    add(ent, name=name[0] + rng.choice(["总", "经理", "工"]), company=comp, phone=direct)

# 4. hard negatives: singletons that look alike
for comp in ["华为技术有限公司", "腾讯科技（深圳）有限公司", "阿里巴巴（中国）有限公司", "北京字节跳动科技有限公司", "广州宏达贸易有限公司"]:
    e += 1
    add(f"E{e:03d}", name="张伟", phone=mobile(), company=comp, city=city_of(comp))  # 张伟 everywhere
for comp in ["华为技术有限公司", "小米科技有限责任公司"]:
    e += 1
    add(f"E{e:03d}", name="王芳", phone=mobile(), company=comp)
e += 1; add(f"E{e:03d}", name="李娜", phone=mobile(), company="华为技术有限公司", email="lina@huawei.com")
e += 1; add(f"E{e:03d}", name="李娜", phone=mobile(), company="华为技术有限公司", email="lina2@huawei.com")  # two 李娜 at Huawei
e += 1; add(f"E{e:03d}", name="王小明", phone=mobile(), company="上海鑫达精密机械有限公司")
e += 1; add(f"E{e:03d}", name="王小敏", phone=mobile(), company="苏州恒信电子科技有限公司")
switch = "021-61234567"
for n in ["赵刚", "钱丽", "孙浩", "周静", "吴杰"]:  # colleagues on one switchboard
    e += 1; add(f"E{e:03d}", name=n, phone=switch, company="上海鑫达精密机械有限公司", email=f"{parse_name(n).tokens[0]}@xinda.cn")
for n in ["陈建国", "陈建华"]:  # same surname, same company: father and son
    e += 1; add(f"E{e:03d}", name=n, company="广州宏达贸易有限公司", phone=mobile())
e += 1; add(f"E{e:03d}", name="刘洋", email="liuyang@bytedance.com", company="北京字节跳动科技有限公司")
e += 1; add(f"E{e:03d}", name="刘阳", email="liuyang2@bytedance.com", company="北京字节跳动科技有限公司", phone=mobile())
e += 1; add(f"E{e:03d}", name="Li Lei", phone=mobile(), company="Xiaomi Inc.")
e += 1; add(f"E{e:03d}", name="李雷", phone=mobile(), company="华为技术有限公司")
while len(rows) < 170:  # fillers: plain distinct customers
    e += 1
    comp, _ = rng.choice(COMPANIES)
    add(f"E{e:03d}", name=fresh_name(), phone=mobile(), company=comp, city=city_of(comp))

rng.shuffle(rows)
for i, row in enumerate(rows):
    row["id"] = f"R{i+1:03d}"
cols = ["id", "name", "phone", "email", "company", "title", "wechat_unionid", "wecom_external_userid", "id_number", "address", "city", "entity"]
with open(OUT, 'w', newline='', encoding='utf-8') as fh:
    w = csv.DictWriter(fh, fieldnames=cols); w.writeheader(); w.writerows(rows)
from collections import Counter
c = Counter(r["entity"] for r in rows)
print(len(rows), "rows", len(c), "entities", sum(1 for v in c.values() if v > 1), "with duplicates", sum(v*(v-1)//2 for v in c.values()), "true pairs")

"""What the sandbox starts with: two teams of reps on both platforms, customers with duplicates
to find, routing rules and a short SLA ladder, and 100 sample leads for the routing playground.

Everything is plain data (the rep and customer rows use the CSV columns of README.md), so the
same rows seed the live sandbox and the throwaway store of the routing playground.
"""

from __future__ import annotations

import random
from typing import Any

# Rep CSV columns: id, name, wecom_userid, dingtalk_userid, team, role, manager, regions,
# product_lines, weight, capacity, status, delivery.
REPS: list[dict[str, str]] = [
    {"id": "m-chen", "name": "陈静", "wecom_userid": "chenjing", "team": "华东", "role": "manager",
     "regions": "上海;江苏;浙江", "status": "active", "delivery": "card"},
    {"id": "r-wang", "name": "王芳", "wecom_userid": "wangfang", "team": "华东", "role": "rep", "manager": "m-chen",
     "regions": "上海;江苏", "product_lines": "CRM;ERP", "weight": "2", "status": "active", "delivery": "card"},
    {"id": "r-li", "name": "李强", "wecom_userid": "liqiang", "team": "华东", "role": "rep", "manager": "m-chen",
     "regions": "浙江", "product_lines": "ERP", "weight": "1", "status": "active", "delivery": "card"},
    {"id": "r-zhao", "name": "赵敏", "dingtalk_userid": "zhaomin", "team": "华东", "role": "rep", "manager": "m-chen",
     "regions": "上海", "product_lines": "云服务", "weight": "1", "status": "active", "delivery": "card"},
    {"id": "r-liu", "name": "刘洋", "wecom_userid": "liuyang", "team": "华东", "role": "rep", "manager": "m-chen",
     "regions": "江苏", "product_lines": "CRM", "weight": "1", "status": "active", "delivery": "text"},
    {"id": "r-sun", "name": "孙丽", "wecom_userid": "sunli", "team": "华东", "role": "rep", "manager": "m-chen",
     "regions": "上海", "product_lines": "CRM", "weight": "1", "status": "on_leave", "delivery": "card"},
    {"id": "m-zhou", "name": "周涛", "dingtalk_userid": "zhoutao", "team": "华北", "role": "manager",
     "regions": "北京;天津;河北", "status": "active", "delivery": "card"},
    {"id": "r-qian", "name": "钱伟", "dingtalk_userid": "qianwei", "team": "华北", "role": "rep", "manager": "m-zhou",
     "regions": "北京", "product_lines": "CRM;云服务", "weight": "1", "status": "active", "delivery": "card"},
    {"id": "r-wu", "name": "吴婷", "dingtalk_userid": "wuting", "team": "华北", "role": "rep", "manager": "m-zhou",
     "regions": "天津;河北", "product_lines": "ERP", "weight": "1", "status": "active", "delivery": "card"},
]

# Customer CSV columns; several rows are the same person or company written differently.
CUSTOMERS: list[dict[str, str]] = [
    {"id": "c-001", "name": "王小明", "phone": "13812345678", "email": "wxm@huawei-demo.cn",
     "company": "华为技术有限公司", "title": "采购经理", "city": "上海", "owner": "r-wang"},
    {"id": "c-002", "name": "王晓明", "phone": "+86 138-1234-5678", "company": "华为技术",
     "title": "采购", "city": "上海"},
    {"id": "c-003", "name": "李雷", "phone": "13900001111", "email": "lilei@acme-demo.cn",
     "company": "上海艾克米贸易有限公司", "city": "上海", "owner": "r-zhao",
     "wechat_unionid": "oUNION-lilei-0001"},
    {"id": "c-004", "name": "Li Lei", "email": "LiLei@acme-demo.cn", "company": "艾克米(上海)贸易",
     "city": "上海"},
    {"id": "c-005", "name": "韩梅梅", "phone": "13700002222", "company": "杭州云帆科技有限公司",
     "city": "杭州", "owner": "r-li"},
    {"id": "c-006", "name": "韩梅梅", "phone": "137 0000 2222", "company": "云帆科技", "city": "杭州"},
    {"id": "c-007", "name": "张伟", "phone": "13600003333", "company": "北京星河医疗器械有限公司",
     "city": "北京", "owner": "r-qian", "医院等级": "三级甲等"},
    {"id": "c-008", "name": "赵丽", "phone": "13500004444", "company": "天津港联物流", "city": "天津"},
    {"id": "c-009", "name": "孙悦", "email": "sunyue@jiangnan-demo.cn", "company": "苏州江南制造有限公司",
     "city": "苏州", "wecom_external_userid": "wmEXT-sunyue-0009"},
]

# A new WeCom friend the "new friend" button can add: the same person as customer c-003.
FRIENDS: list[dict[str, str]] = [
    {"external_userid": "wmEXT-lilei-0003", "name": "李雷", "unionid": "oUNION-lilei-0001",
     "corp_name": "上海艾克米贸易有限公司"},
    {"external_userid": "wmEXT-newbie-0100", "name": "陈一鸣", "unionid": "oUNION-chenym-0100",
     "corp_name": "南京启明软件"},
]

# Routing: expo leads go to 华东's pool (everyone gets a copy, first tap wins); the north to
# 华北; the east to 华东; big tickets to the team's least loaded rep. No match: every rep.
ASSIGNMENT: dict[str, Any] = {
    "rules": [
        {"name": "展会线索进华东公海", "match": {"source_channel": "expo"}, "pool": "华东"},
        {"name": "华北大区", "match": {"region": ["北京", "天津", "河北"]}, "team": "华北"},
        {"name": "华东大单", "match": {"region": ["上海", "江苏", "浙江"], "amount": {"min": 500000}},
         "team": "华东", "strategy": "least_loaded"},
        {"name": "华东大区", "match": {"region": ["上海", "江苏", "浙江"]}, "team": "华东"},
    ],
}

# A short ladder, so fast-forwarding a few minutes shows each step.
SLA: dict[str, Any] = {"first_touch_remind": "2m", "first_touch_escalate": "4m", "first_touch_reassign": "10m",
                       "pool_return": "2h", "working_time": False}

# Around the clock, so the sandbox behaves the same whenever someone tries it.
CALENDAR: dict[str, Any] = {"working_hours": "00:00-24:00", "working_days": [1, 2, 3, 4, 5, 6, 7]}

ASSIGNMENT_TOML = '''# Paste your own config.toml here (only [assignment], [calendar] are used)
[assignment]
default_strategy = "weighted_round_robin"

[[assignment.rules]]
name = "展会线索进华东公海"
pool = "华东"
[assignment.rules.match]
source_channel = "expo"

[[assignment.rules]]
name = "华北大区"
team = "华北"
[assignment.rules.match]
region = ["北京", "天津", "河北"]

[[assignment.rules]]
name = "华东大单"
team = "华东"
strategy = "least_loaded"
[assignment.rules.match]
region = ["上海", "江苏", "浙江"]
amount = { min = 500000 }

[[assignment.rules]]
name = "华东大区"
team = "华东"
[assignment.rules.match]
region = ["上海", "江苏", "浙江"]
'''

REGIONS = ["上海", "江苏", "浙江", "北京", "天津", "河北", "广东", "四川"]
CHANNELS = ["baidu", "web_form", "expo", "wechat_ad", "referral"]
PRODUCTS = ["CRM", "ERP", "云服务"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "涛", "明", "超"]
COMPANIES = ["科技有限公司", "贸易有限公司", "制造有限公司", "医疗器械有限公司", "物流有限公司", "软件有限公司"]
CITIES = {"上海": "上海", "江苏": "苏州", "浙江": "杭州", "北京": "北京", "天津": "天津", "河北": "石家庄",
          "广东": "深圳", "四川": "成都"}


def sample_leads(n: int = 100, seed: int = 7) -> list[dict[str, Any]]:
    """`n` varied leads (the same ones every time), as an intake source would post them."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        region = rng.choice(REGIONS)
        amount = rng.choice([0, 20000, 80000, 150000, 300000, 600000, 1200000])
        lead: dict[str, Any] = {
            "name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(["", *GIVEN]),
            "phone": f"13{rng.randint(0, 9)}{rng.randint(10000000, 99999999)}",
            "company": CITIES[region] + rng.choice(["华信", "中联", "东方", "新元", "恒通", "远航"])
            + rng.choice(COMPANIES),
            "region": region, "city": CITIES[region], "channel": rng.choice(CHANNELS),
            "product_line": rng.choice(PRODUCTS),
        }
        if amount:
            lead["amount"] = amount
        out.append(lead)
    return out


async def seed_store(store: Any) -> dict[str, Any]:
    """Imports the reps and customers into a CRM store (crm.sql_store.SqlCRMStore)."""
    reps = await store.import_reps(REPS)
    customers = await store.import_customers(CUSTOMERS)
    return {"reps": reps, "customers": customers}


def platform_users() -> tuple[list[str], list[str]]:
    """(WeCom userids, DingTalk userids) of the seeded reps."""
    return ([r["wecom_userid"] for r in REPS if r.get("wecom_userid")],
            [r["dingtalk_userid"] for r in REPS if r.get("dingtalk_userid")])

"""Company names: "广东省深圳市腾讯计算机系统有限公司", "腾讯科技（深圳）有限公司" and "Tencent" are
written a hundred ways. normalize_company strips what does not tell two companies apart
(places, legal forms, width, punctuation, case); company_key folds further, to a pinyin core used
for blocking, so that "华为技术有限公司" and "Huawei Technologies Co., Ltd." meet.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

from crm_bridge.identity.normalize import nfkc

PROVINCES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽",
    "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西",
    "甘肃", "青海", "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
)
CITIES = (
    "深圳", "广州", "东莞", "佛山", "珠海", "中山", "惠州", "汕头", "江门", "湛江", "肇庆", "清远", "揭阳",
    "杭州", "宁波", "温州", "绍兴", "嘉兴", "金华", "台州", "湖州", "义乌", "舟山", "丽水", "衢州",
    "南京", "苏州", "无锡", "常州", "南通", "徐州", "扬州", "镇江", "盐城", "泰州", "昆山", "连云港",
    "淮安", "宿迁", "江阴", "张家港", "常熟", "成都", "绵阳", "德阳", "宜宾", "武汉", "宜昌", "襄阳",
    "长沙", "株洲", "湘潭", "岳阳", "常德", "郑州", "洛阳", "新乡", "南阳", "济南", "青岛", "烟台", "潍坊",
    "临沂", "淄博", "威海", "济宁", "日照", "石家庄", "唐山", "保定", "廊坊", "邯郸", "沧州", "秦皇岛",
    "太原", "大同", "沈阳", "大连", "鞍山", "长春", "哈尔滨", "大庆", "合肥", "芜湖", "蚌埠", "福州",
    "厦门", "泉州", "漳州", "莆田", "南昌", "赣州", "九江", "南宁", "柳州", "桂林", "海口", "三亚",
    "贵阳", "遵义", "昆明", "西安", "咸阳", "宝鸡", "兰州", "西宁", "银川", "乌鲁木齐", "呼和浩特", "包头",
    "拉萨", "台北", "雄安", "浦东", "滨海", "前海", "南沙", "横琴",
)
_PLACE_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "新区", "省", "市", "区")
_ZONES = ("高新技术产业开发区", "经济技术开发区", "经济开发区", "工业园区", "高新区", "开发区", "自贸区", "保税区",
          "新区")
_PLACES_EN = frozenset({"china", "shanghai", "beijing", "shenzhen", "guangzhou", "hangzhou", "hk",
                        "hong kong", "hongkong", "prc"})
_PLACES = tuple(sorted(set(PROVINCES + CITIES + ("中国", "中华")), key=len, reverse=True))

# Entities bound to their city by nature: 北京银行 and 上海银行 are two banks, not one.
_CITY_BOUND = ("银行", "证券", "大学", "学院", "医院", "中学", "小学", "电视台", "日报", "晚报", "机场",
               "地铁", "电信", "移动", "联通", "电力", "燃气", "水务", "海关", "税务", "公安", "政府",
               "人民", "市政", "图书馆", "博物馆", "体育", "交通", "铁路", "港务", "农商", "商会")

_LEGAL_SUFFIXES_ZH = tuple(sorted((
    "集团股份有限公司", "集团有限责任公司", "集团有限公司", "股份有限公司", "有限责任公司", "有限公司",
    "分公司", "子公司", "总公司", "控股集团", "集团公司", "集团", "公司", "股份", "控股", "办事处", "代表处",
    "工作室", "事务所", "合伙企业", "有限合伙", "普通合伙", "个体工商户", "商行", "经营部", "门市部",
), key=len, reverse=True))

_LEGAL_WORDS_EN = {
    "co", "company", "ltd", "limited", "inc", "incorporated", "corp", "corporation", "llc", "llp",
    "plc", "gmbh", "ag", "sa", "sas", "bv", "nv", "pte", "pty", "kk", "srl", "spa", "oy", "ab",
    "group", "holding", "holdings", "the",
}

# Descriptors dropped for the blocking core: "华为技术" and "华为" meet in one block; the score
# still compares the fuller names.
_DESCRIPTORS_ZH = tuple(sorted((
    "信息技术", "网络科技", "信息科技", "智能科技", "电子科技", "生物科技", "科技发展", "科技", "技术",
    "信息", "网络", "软件", "电子", "贸易", "商贸", "实业", "发展", "咨询", "服务", "管理", "国际",
    "控股", "投资", "工程", "设备", "制造", "智能", "数字", "数据", "文化", "传媒", "教育", "医疗",
    "生物", "新材料", "材料", "物流", "供应链", "建设", "建筑", "电气", "机械", "自动化", "环保",
    "新能源", "能源", "汽车", "食品", "化工", "电器", "通信", "通讯", "计算机系统", "计算机", "系统",
    "互联网", "云计算", "进出口", "企业", "产业", "工业", "创新", "营销", "广告", "品牌",
), key=len, reverse=True))
_DESCRIPTORS_EN = {
    "technology", "technologies", "tech", "software", "trading", "international", "intl",
    "network", "networks", "information", "info", "services", "service", "solutions", "solution",
    "systems", "system", "digital", "industries", "industry", "industrial", "enterprise",
    "enterprises", "china", "shanghai", "beijing", "shenzhen", "guangzhou", "hangzhou",
    "development", "consulting", "management", "investment", "electronics", "electronic",
    "communications", "communication", "computer", "global", "asia", "pacific",
}

_BRACKETS = re.compile(r"[(\[【（〔「『<《]([^)\]】）〕」』>》]*)[)\]】）〕」』>》]")
_HAN = re.compile(r"[\u3400-\u9fff]")
_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _is_place(text: str) -> bool:
    text = text.strip()
    for suffix in _PLACE_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    return text in _PLACES or text.lower() in _PLACES_EN


_PLACES_BY_FIRST: dict[str, tuple[str, ...]] = {}
for _place in _PLACES:
    _PLACES_BY_FIRST[_place[0]] = _PLACES_BY_FIRST.get(_place[0], ()) + (_place,)


def _strip_one_place(text: str) -> str | None:
    for place in _PLACES_BY_FIRST.get(text[:1], ()):
        if text.startswith(place):
            rest = text[len(place):]
            for suffix in _PLACE_SUFFIXES:
                if rest.startswith(suffix):
                    rest = rest[len(suffix):]
                    break
            for zone in _ZONES:
                if rest.startswith(zone):
                    rest = rest[len(zone):]
                    break
            return rest
    return None


def strip_place_prefix(text: str, keep_generic: bool = True) -> str:
    """广东省深圳市XX -> XX, 上海XX -> XX; a remainder too short or city-bound (银行, 大学 ...)
    keeps its place when keep_generic."""
    while True:
        rest = _strip_one_place(text)
        if rest is None or len(rest) < 2:
            return text
        if keep_generic and any(word in rest for word in _CITY_BOUND) and not _strip_one_place(rest):
            return text
        text = rest


def _strip_legal_zh(text: str) -> str:
    changed = True
    while changed and text:
        changed = False
        for suffix in _LEGAL_SUFFIXES_ZH:
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)]
                changed = True
                break
        # "...有限公司上海分公司": a branch's trailing city goes too.
        for place in _PLACES:
            if text.endswith(place) and len(text) > len(place) + 1:
                text = text[: -len(place)]
                changed = True
                break
            for suffix in ("市", "省"):
                if text.endswith(place + suffix) and len(text) > len(place) + 2:
                    text = text[: -len(place) - 1]
                    changed = True
                    break
    return text


def _bracket(match: re.Match[str]) -> str:
    inner = match.group(1).strip()
    if not inner or _is_place(inner) or inner in _LEGAL_SUFFIXES_ZH or inner.lower() in _LEGAL_WORDS_EN:
        return " "
    return " " + inner + " "


@lru_cache(maxsize=200_000)
def normalize_company(raw: str | None) -> str:
    """The company as compared: "广东省深圳市腾讯计算机系统有限公司" -> "腾讯计算机系统",
    "腾讯科技（深圳）有限公司" -> "腾讯科技", "Huawei Technologies Co., Ltd." -> "huawei technologies"."""
    if not raw:
        return ""
    text = nfkc(str(raw)).lower().strip()
    text = _BRACKETS.sub(_bracket, text)
    if _HAN.search(text):
        text = _SPACES.sub("", text)
        text = _NON_WORD.sub("", text)
        text = strip_place_prefix(text)
        text = _strip_legal_zh(text)
        text = strip_place_prefix(text)
        return sys.intern(text)
    words = [w for w in _NON_WORD.split(text.replace("&", " and ")) if w]
    while words and words[-1] in _LEGAL_WORDS_EN:
        words.pop()
    if words and words[0] == "the":
        words.pop(0)
    return sys.intern(" ".join(words))


def _strip_descriptors_zh(text: str) -> str:
    changed = True
    while changed:
        changed = False
        for word in _DESCRIPTORS_ZH:
            if text.endswith(word) and len(text) - len(word) >= 2:
                text = text[: -len(word)]
                changed = True
                break
    return text


@lru_cache(maxsize=200_000)
def company_core(raw: str | None) -> str:
    """The distinctive part, still readable: "腾讯计算机系统" -> "腾讯", "huawei technologies" -> "huawei"."""
    norm = normalize_company(raw)
    if not norm:
        return ""
    if _HAN.search(norm):
        return sys.intern(_strip_descriptors_zh(norm))
    words = norm.split()
    kept = [w for w in words if w not in _DESCRIPTORS_EN]
    return sys.intern(" ".join(kept or words))


@lru_cache(maxsize=200_000)
def company_key(raw: str | None) -> str:
    """Blocking key: the core in toneless pinyin letters, so Chinese and pinyin spellings meet."""
    core = company_core(raw)
    if not core:
        return ""
    if _HAN.search(core):
        core = "".join(lazy_pinyin(core, style=Style.NORMAL, errors="default"))
    return sys.intern(_NON_WORD.sub("", core).replace("v", "u"))

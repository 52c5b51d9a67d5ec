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

from identity.normalize import nfkc
from identity.places import PLACES, is_place, strip_place_prefix

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
    "互联网", "云计算", "进出口", "企业", "产业", "工业", "创新", "营销", "广告", "品牌", "精密机械", "精密",
    "医疗器械", "器械", "仪器", "仪表", "模具", "五金", "塑胶", "包装", "印刷", "纺织", "服饰", "家具",
), key=len, reverse=True))
_DESCRIPTORS_EN = {
    "technology", "technologies", "tech", "software", "trading", "international", "intl",
    "network", "networks", "information", "info", "services", "service", "solutions", "solution",
    "systems", "system", "digital", "industries", "industry", "industrial", "enterprise",
    "enterprises", "china", "shanghai", "beijing", "shenzhen", "guangzhou", "hangzhou",
    "development", "consulting", "management", "investment", "electronics", "electronic",
    "communications", "communication", "computer", "global", "asia", "pacific", "medical", "devices",
    "device", "equipment", "materials", "material", "new", "precision", "machinery", "logistics",
    "intelligent", "intelligence", "smart", "electric", "electrical", "biotech", "science", "sciences",
}

_BRACKETS = re.compile(r"[(\[【（〔「『<《]([^)\]】）〕」』>》]*)[)\]】）〕」』>》]")
_HAN = re.compile(r"[\u3400-\u9fff]")
_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


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
        for place in PLACES:
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
    if not inner or is_place(inner) or inner in _LEGAL_SUFFIXES_ZH or inner.lower() in _LEGAL_WORDS_EN:
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

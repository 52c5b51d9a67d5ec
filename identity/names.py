"""Person names: 王小明, "Wang Xiaoming", "XIAOMING WANG", "王小明（微信备注：华为采购）", "A03-王小明-销售部 🌸"
are one person's name. parse_name cleans the WeChat noise, converts Chinese to toneless pinyin and
derives an order-free key; names that are only a surname and an honorific (张总, 李经理, 小王) are
flagged weak: they say little about who it is.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, lazy_pinyin
from rapidfuzz.distance import Indel

from identity.normalize import nfkc

COMPOUND_SURNAMES = frozenset((
    "欧阳", "太史", "端木", "上官", "司马", "东方", "独孤", "南宫", "万俟", "闻人", "夏侯", "诸葛", "尉迟",
    "公羊", "赫连", "澹台", "皇甫", "宗政", "濮阳", "公冶", "太叔", "申屠", "公孙", "慕容", "仲孙", "钟离",
    "长孙", "宇文", "司徒", "鲜于", "司空", "闾丘", "子车", "亓官", "司寇", "巫马", "公西", "颛孙", "壤驷",
    "公良", "漆雕", "乐正", "宰父", "谷梁", "拓跋", "夹谷", "轩辕", "令狐", "段干", "百里", "呼延", "东郭",
    "南门", "羊舌", "微生", "梁丘", "左丘", "西门", "第五", "即墨", "达奚",
))
# Surnames read differently from the same character elsewhere (单 is shan, not dan, as a surname).
SURNAME_READINGS = {
    "单": "shan", "曾": "zeng", "解": "xie", "仇": "qiu", "朴": "piao", "区": "ou", "查": "zha",
    "缪": "miao", "覃": "qin", "翟": "zhai", "乐": "yue", "种": "chong", "盖": "ge", "任": "ren",
    "员": "yun", "召": "shao", "秘": "bi", "繁": "po", "折": "she", "黑": "he", "葛": "ge", "过": "guo",
    "柏": "bai", "沈": "shen", "尉迟": "yuchi", "万俟": "moqi", "长孙": "zhangsun", "传": "chuan",
    "句": "gou", "阚": "kan", "隗": "wei", "冼": "xian", "宓": "mi", "蕃": "pi", "卜": "bu", "薄": "bo",
}
HONORIFICS = tuple(sorted((
    "总经理", "总监", "总裁", "董事长", "董事", "经理", "主任", "主管", "老师", "老板", "先生", "女士",
    "小姐", "太太", "律师", "医生", "大夫", "博士", "教授", "师傅", "阿姨", "处长", "局长", "科长",
    "部长", "院长", "校长", "所长", "厂长", "站长", "秘书", "助理", "总工", "会计", "姐姐", "哥哥",
    "总", "工", "董", "姐", "哥", "叔", "姨", "生", "sir", "总助", "专员", "顾问", "采购", "老师傅",
), key=len, reverse=True))
_HONORIFIC_PREFIXES = ("小", "老", "阿")
COMMON_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
    "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄"
    "窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池"
    "查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆"
    "朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫"
    "杭况那宿鲜印逯隆茹诸战慕危玉银亢嵩帖蔚")
_LATIN_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam", "mister"}
_DEPARTMENT = re.compile(
    r"(销售|市场|采购|技术|研发|财务|行政|人事|人力|运营|客服|商务|产品|工程|法务|品牌|外贸|供应链)"
    r"(部|中心|组|科|处)?$|.*(部|公司|集团|中心)$")

_HAN_CHAR = re.compile(r"[\u3400-\u9fff]")
_HAN_RUN = re.compile(r"[\u3400-\u9fff·]+")
_BRACKETED = re.compile(r"[(\[【（〔「『<《{][^)\]】）〕」』>》}]*[)\]】）〕」』>》}]?")
_REMARK_LABEL = re.compile(r"(微信|备注|wx|wechat|vx|v信|电话|手机|tel|qq)[:：].*$", re.IGNORECASE)
_SORT_PREFIX = re.compile(r"^\s*[aA]{1,4}\s*\d*\s*[-_.、:：|/·\s]+|^\s*\d{1,4}\s*[-_.、:：|/]+\s*")
_SEPARATORS = re.compile(r"\s*[-–—_|/／@＠~～]+\s*")
_LATIN_TOKEN = re.compile(r"[a-z]+")
_DIGITS = re.compile(r"\d+")
_LATIN_NOISE = re.compile(r"[^\w\s'-]")


@dataclass(frozen=True, slots=True)
class NameInfo:
    """A person name, cleaned and comparable.

    display: the cleaned name as a person would write it ("王小明", "Xiaoming Wang").
    han: the Chinese characters when the name is written in Chinese, else "".
    tokens: pinyin/latin tokens, surname first for Chinese ("wang", "xiaoming").
    key: the sorted letters of the tokens, the same for either order or spacing ("Wang Xiaoming",
         "xiaoming wang", 王小明, 汪晓明 all give one key): the blocking key.
    surname: the surname in pinyin, when it is known.
    weak: a surname with an honorific (张总), or a surname alone: weak evidence.
    """

    display: str
    han: str
    tokens: tuple[str, ...]
    key: str
    surname: str
    weak: bool

    @property
    def present(self) -> bool:
        return bool(self.key or self.surname)


EMPTY_NAME = NameInfo("", "", (), "", "", False)


def _strip_symbols(text: str) -> str:
    # Emoji, pictographs, variation selectors, zero-width joiners and the like.
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] in "SC" or cat == "Mn":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _person_likeness(part: str) -> float:
    han = "".join(_HAN_RUN.findall(part))
    if not han or _DEPARTMENT.match(han):
        return -1.0
    score = 0.0
    if han[:1] in COMMON_SURNAMES or han[:2] in COMPOUND_SURNAMES:
        score += 2
    if 2 <= len(han) <= 4:
        score += 1 + (0.5 if len(han) == 3 else 0)
    return score


def clean_name(raw: str | None) -> str:
    """Removes WeChat remark noise: （微信备注：…）, 【…】, emoji, "A03-" sort prefixes,
    "-销售部"/"_华为" tails, digits (a phone number in the remark)."""
    if not raw:
        return ""
    text = nfkc(str(raw))
    text = _strip_symbols(text)
    text = _BRACKETED.sub(" ", text)
    text = _REMARK_LABEL.sub(" ", text)
    text = _SORT_PREFIX.sub("", text)
    text = _DIGITS.sub(" ", text)
    if _HAN_CHAR.search(text):
        parts = [p.strip() for p in _SEPARATORS.split(text) if _HAN_CHAR.search(p)]
        if not parts:
            return ""
        # "华为-王小明", "王小明-销售部", "A03-王总-华为": keep the part that looks like a person.
        text = max(enumerate(parts), key=lambda ip: _person_likeness(ip[1]) - 0.1 * ip[0])[1]
        runs = _HAN_RUN.findall(text)
        if len(runs) >= 2 and (len(runs[0]) == 1 or runs[0] in COMPOUND_SURNAMES) and len(runs[1]) <= 3:
            return runs[0] + runs[1]  # "王 小明": a space inside the name
        # "王小明 华为", "Tony 王小明": the first Chinese run is the name.
        return runs[0] if runs else ""
    text = _LATIN_NOISE.sub(" ", text)
    text = text.replace("-", "").replace("'", "")
    return " ".join(text.split())


def _fold_latin(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    out = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return out.replace("ü", "u")


def _fold_syllable(s: str) -> str:
    # ü is written v, yu or u depending on who typed it (吕: lv, lyu, lu). Only a leading lyu/nyu
    # is ü: inside a word "nyu" is n|yu (涵雨 hanyu).
    s = s.replace("v", "u")
    if s.startswith(("lyu", "nyu")):
        s = s[0] + s[2:]
    return s


def _surname_split(han: str) -> tuple[str, str]:
    if len(han) >= 3 and han[:2] in COMPOUND_SURNAMES:
        return han[:2], han[2:]
    return han[:1], han[1:]


@lru_cache(maxsize=65536)
def _char_pinyin(ch: str) -> str:
    return "".join(lazy_pinyin(ch, style=Style.NORMAL, errors="ignore"))


def _pinyin(han: str) -> str:
    # Character by character, each in its most common reading: names are not phrases, and the
    # same input must always give the same letters (pypinyin's phrase segmentation is also 10x
    # slower, which a million-customer index build notices).
    return "".join(_fold_syllable(_char_pinyin(ch)) for ch in han)


def surname_pinyin(han_surname: str) -> str:
    return _fold_syllable(SURNAME_READINGS.get(han_surname) or _pinyin(han_surname))


_HONORIFIC_LAST = frozenset(t[-1] for t in HONORIFICS)


def _honorific_only(han: str) -> str | None:
    """张总 -> 张, 小王 -> 王, 欧阳经理 -> 欧阳; None when it is a full name."""
    if len(han) == 1:
        return han
    for prefix in _HONORIFIC_PREFIXES:
        if len(han) == 2 and han.startswith(prefix) and han[1] in COMMON_SURNAMES:
            return han[1]
    if han[-1:] not in _HONORIFIC_LAST:
        return None
    for title in HONORIFICS:
        if han.endswith(title) and len(han) > len(title):
            rest = han[: -len(title)]
            if len(rest) == 1 or rest in COMPOUND_SURNAMES:
                return rest
    if len(han) == 1:
        return han
    return None


def _strip_trailing_title(han: str) -> str:
    # "王小明经理" -> "王小明"; only when a full name (2+ characters) remains.
    if han[-1:] not in _HONORIFIC_LAST:
        return han
    for title in HONORIFICS:
        if len(title) >= 2 and han.endswith(title) and len(han) - len(title) >= 2:
            return han[: -len(title)]
    return han


def _key(tokens: tuple[str, ...]) -> str:
    return sys.intern("".join(sorted("".join(tokens))))


_PLAIN_HAN = re.compile(r"^[\u3400-\u9fff]{2,4}$")


@lru_cache(maxsize=300_000)
def parse_name(raw: str | None) -> NameInfo:
    # Most names are two to four plain Chinese characters: nothing to clean.
    display = raw if raw and _PLAIN_HAN.match(raw) else clean_name(raw)
    if not display:
        return EMPTY_NAME
    if _HAN_CHAR.search(display):
        han = display.replace("·", "")
        surname_only = _honorific_only(han)
        if surname_only is not None:
            py = surname_pinyin(surname_only)
            return NameInfo(display, surname_only, (py,), "", sys.intern(py), True)
        han = _strip_trailing_title(han)
        surname, given = _surname_split(han) if len(han) <= 4 else ("", han)
        if surname:
            tokens = (surname_pinyin(surname), _pinyin(given))
        else:
            tokens = (_pinyin(han),)
        tokens = tuple(t for t in tokens if t)
        known = surname and (surname in COMMON_SURNAMES or surname in COMPOUND_SURNAMES
                             or surname in SURNAME_READINGS)
        return NameInfo(han, sys.intern(han), tokens, _key(tokens), sys.intern(tokens[0]) if known else "", False)
    words = _LATIN_TOKEN.findall(_fold_latin(display))
    titled = bool(words) and words[0] in _LATIN_TITLES
    words = [w for w in words if w not in _LATIN_TITLES]
    if not words:
        return EMPTY_NAME
    tokens = tuple(_fold_syllable(w) for w in words)
    if titled and len(tokens) == 1:
        # "Mr. Wang": a surname and a title, like 王先生.
        return NameInfo(display, "", tokens, "", sys.intern(tokens[0]), True)
    return NameInfo(display, "", tokens, _key(tokens), "", False)


def _rotations(tokens: tuple[str, ...]) -> list[str]:
    if len(tokens) <= 1:
        return ["".join(tokens)]
    return ["".join(tokens[i:] + tokens[:i]) for i in range(len(tokens))]


def _surnames(info: NameInfo) -> set[str]:
    if info.surname:
        return {info.surname}
    if info.tokens:
        return {info.tokens[0], info.tokens[-1]}
    return set()


def _han_surname(info: NameInfo) -> str:
    if info.weak:
        return info.han
    return _surname_split(info.han)[0]


def name_similarity(a: NameInfo, b: NameInfo) -> tuple[float, str]:
    """0..1 and a short reason. Same Chinese characters 1.0; same pinyin with other characters
    (an IME slip, 王晓明/王小明) 0.9; Chinese against pinyin in either order 0.95; a weak name
    (张总) against a name with that surname 0.7."""
    if not a.present or not b.present:
        return 0.0, "no name"
    if a.weak or b.weak:
        if a.han and b.han:
            same = _han_surname(a) == _han_surname(b)  # 姜 and 蒋 sound alike, and are two families
        else:
            same = bool(_surnames(a) & _surnames(b))
        return (0.7, "surname only (honorific)") if same else (0.0, "surnames differ")
    if a.han and b.han:
        if a.han == b.han:
            return 1.0, "same name"
        if a.tokens == b.tokens:
            return 0.85, "same pinyin, other characters"
        char_sim = Indel.normalized_similarity(a.han, b.han)
        py_sim = Indel.normalized_similarity("".join(a.tokens), "".join(b.tokens)) * 0.85
        return max(char_sim, py_sim), "similar name"
    if (len(a.tokens) == 1) != (len(b.tokens) == 1) and not (a.han or b.han):
        # "Green" against "Emma Green": only a part of the name is known.
        single, full = (a, b) if len(a.tokens) == 1 else (b, a)
        if single.tokens[0] in full.tokens:
            return 0.7, "part of the name"
    best = 0.0
    for left in _rotations(a.tokens):
        for right in _rotations(b.tokens):
            best = max(best, Indel.normalized_similarity(left, right))
    if best == 1.0:
        if a.han or b.han:
            return 0.95, "same name in pinyin"
        return 1.0, "same name"
    if a.key == b.key:
        return 0.9, "same letters"
    return best * 0.95, "similar name"


# The most frequent full names in China (the Ministry of Public Security's yearly name reports put
# 张伟, 王伟, 王芳, 李伟, 李娜 ... each near or above 200,000 holders): in a customer base of any
# size such a name plus a company can be two people, so it is never enough on its own.
COMMON_FULL_NAMES = frozenset((
    "张伟 王伟 王芳 李伟 李娜 张敏 李静 王静 刘伟 王秀英 张丽 李秀英 王丽 张静 张秀英 李强 王敏 李敏 王磊 刘洋 "
    "王艳 王勇 李军 张勇 李杰 张杰 张磊 王强 李娟 王军 张艳 张涛 王涛 李艳 王超 李明 李勇 王娟 刘杰 刘敏 李霞 "
    "李丽 张军 王杰 张强 王秀兰 王刚 王平 刘芳 张燕 刘艳 刘军 李平 王辉 王燕 陈静 刘勇 李玲 李桂英 王丹 李刚 "
    "李丹 李萍 王鹏 刘涛 陈伟 张华 刘静 李涛 王桂英 张秀兰 李红 李超 刘丽 张桂英 王玉兰 李燕 张鹏 李秀兰 张超 "
    "王霞 张玲 陈勇 王红 陈杰 刘斌 陈敏 杨伟 杨静 黄伟 赵伟 周伟 吴伟 徐伟 孙伟 刘强 刘磊 王斌 李斌 张斌 "
    "王建华 李建华 张建华 王建国 李建国 张建国 王建军 李建军 张建军 王秀珍 李秀珍 张秀珍 王凤英 李凤英 张凤英 "
    "王婷 李婷 张婷 王浩 李浩 张浩 王宇 李宇 张宇 王欣 李欣 张欣 王颖 李颖 张颖 王晶 李晶 张晶 王倩 李倩 张倩 "
    "王琳 李琳 张琳 王娜 张娜 刘娜 陈娜 王洋 李洋 张洋 王亮 李亮 张亮 王晨 李晨 张晨 王雪 李雪 张雪").split())
_COMMON_PINYIN_KEYS = frozenset(parse_name(n).key for n in COMMON_FULL_NAMES)


def is_common_name(info: NameInfo) -> bool:
    """张伟, "Zhang Wei", "Wei Zhang": a name so many people carry that it identifies nobody."""
    if info.han:
        return info.han in COMMON_FULL_NAMES
    return bool(info.key) and info.key in _COMMON_PINYIN_KEYS and len(info.tokens) == 2


_LOCAL_LETTERS = re.compile(r"[^a-z]")


def mailbox_forms(info: NameInfo) -> frozenset[str]:
    """The local parts a company mail system makes of a name: zhangwei, weizhang, w.zhang -> wzhang,
    zhangw, zw ... (letters only)."""
    tokens = [t for t in info.tokens if t]
    if len(tokens) < 2:
        return frozenset(tokens)
    first, last = tokens[0], tokens[-1]
    forms = {first + last, last + first, first[0] + last, last[0] + first, first + last[0], last + first[0],
             first[0] + last[0], last[0] + first[0]}
    return frozenset(f for f in forms if len(f) >= 2)


def mailbox_from_name(local: str, info: NameInfo) -> bool:
    """Whether a mailbox's local part is built from this name (digits aside)."""
    letters = _LOCAL_LETTERS.sub("", local.lower()).replace("v", "u")  # 吕: lv@ as well as lu@
    return len(letters) >= 3 and letters in mailbox_forms(info)

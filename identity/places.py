"""Chinese place names and the stripping of a place prefix ("广东省深圳市XX" -> "XX"): shared by
company names (company.py) and addresses (normalize.py), which otherwise know nothing of each other.
"""

from __future__ import annotations

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
PLACES = tuple(sorted(set(PROVINCES + CITIES + ("中国", "中华")), key=len, reverse=True))

# Entities bound to their city by nature: 北京银行 and 上海银行 are two banks, not one.
CITY_BOUND = ("银行", "证券", "大学", "学院", "医院", "中学", "小学", "电视台", "日报", "晚报", "机场",
               "地铁", "电信", "移动", "联通", "电力", "燃气", "水务", "海关", "税务", "公安", "政府",
               "人民", "市政", "图书馆", "博物馆", "体育", "交通", "铁路", "港务", "农商", "商会")

def is_place(text: str) -> bool:
    text = text.strip()
    for suffix in _PLACE_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    return text in PLACES or text.lower() in _PLACES_EN


PLACES_BY_FIRST: dict[str, tuple[str, ...]] = {}
for _place in PLACES:
    PLACES_BY_FIRST[_place[0]] = PLACES_BY_FIRST.get(_place[0], ()) + (_place,)


def _strip_one_place(text: str) -> str | None:
    for place in PLACES_BY_FIRST.get(text[:1], ()):
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
        if keep_generic and any(word in rest for word in CITY_BOUND) and not _strip_one_place(rest):
            return text
        text = rest

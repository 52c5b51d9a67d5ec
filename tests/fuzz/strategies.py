"""Hostile input for the HTTP edge: malformed and dangerous XML and JSON, wrong encodings,
oversize and deeply nested bodies, timestamps outside the window."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.conftest import MAX_BODY

ENCODINGS = ("utf-8", "utf-16", "utf-16-le", "utf-32", "gb18030", "gbk", "big5", "latin-1", "cp1252",
             "shift_jis")

# Text that tends to break parsers and databases: NUL, surrogates-as-escapes, RTL, emoji, CJK.
NASTY_TEXT = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["\x00", "\x00abc", "\ud7ff", "\u202e", "\ufeff", "😀" * 5, "王小明", "a" * 300,
                     "]]>", "<![CDATA[x]]>", "&amp;", "&lt;", "'\";--", "%00", "\\u0000", " ", ""]),
)

XML_ATTACKS = [
    # billion laughs
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    b'<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">'
    b'<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]>'
    b'<xml><Encrypt>&lol5;</Encrypt></xml>',
    # quadratic blowup
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "' + b"A" * 2000 + b'">]><xml><Encrypt>'
    + b"&a;" * 200 + b"</Encrypt></xml>",
    # external entity (file) and external DTD
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<xml><Encrypt>&xxe;</Encrypt></xml>",
    b'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd"><xml><Encrypt>x</Encrypt></xml>',
    # parameter entities
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p">%p;]><xml/>',
    # a plain DTD with no entities
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ELEMENT xml ANY>]><xml><Encrypt>x</Encrypt></xml>',
    # processing instructions, comments, CDATA games
    b"<?xml version='1.0'?><?evil x?><xml><!-- c --><Encrypt><![CDATA[x]]></Encrypt></xml>",
    # wrong root, no root, two roots, unclosed
    b"<notxml><Encrypt>x</Encrypt></notxml>", b"", b"<xml>", b"<xml></xml><xml></xml>",
    b"<xml><Encrypt>x</Encrypt>", b"<<<>>>", b"\x00\x00\x00", b"\xff\xfe<\x00x\x00",
    # declared encodings that lie
    b'<?xml version="1.0" encoding="gbk"?><xml><Encrypt>\xff\xff</Encrypt></xml>',
    b'<?xml version="1.0" encoding="utf-16"?><xml><Encrypt>x</Encrypt></xml>',
    b'<?xml version="1.0" encoding="x-no-such"?><xml><Encrypt>x</Encrypt></xml>',
    # namespaces and attributes
    b'<x:xml xmlns:x="urn:x"><x:Encrypt a="1">x</x:Encrypt></x:xml>',
]


def deep_xml(depth: int, root: str = "xml") -> bytes:
    return (f"<{root}>" + "<a>" * depth + "x" + "</a>" * depth + f"</{root}>").encode()


def deep_json(depth: int, opener: str = "[") -> bytes:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "{":
        return ('{"a":' * depth + "1" + closer * depth).encode()
    return (opener * depth + closer * depth).encode()


@st.composite
def xml_documents(draw: Any, root: str = "xml") -> bytes:
    """Well-formed-ish XML with random element names and texts, possibly wrongly encoded."""
    names = st.sampled_from(["ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "EventKey",
                             "ChangeType", "UserID", "ExternalUserID", "TaskId", "MsgId", "Content", "Encrypt",
                             "AgentID", "x", "a-b", "中文"])
    fields = draw(st.lists(st.tuples(names, NASTY_TEXT), max_size=8))
    body = "".join(f"<{n}><![CDATA[{v}]]></{n}>" if draw(st.booleans()) else f"<{n}>{_escape(v)}</{n}>"
                   for n, v in fields)
    doc = f"<{root}>{body}</{root}>"
    return _encode(draw, doc)


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _encode(draw: Any, doc: str) -> bytes:
    encoding = draw(st.sampled_from(ENCODINGS))
    return doc.encode(encoding, errors="replace")


def hostile_xml() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from(XML_ATTACKS),
        st.integers(min_value=10, max_value=3000).map(deep_xml),
        xml_documents(),
        st.binary(max_size=512),
        st.just(b"<xml><Encrypt>" + b"A" * (MAX_BODY + 10) + b"</Encrypt></xml>"),
    )


JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), NASTY_TEXT)
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(NASTY_TEXT, inner, max_size=4)), max_leaves=20)


def hostile_json(keys: list[str] | None = None) -> st.SearchStrategy[bytes]:
    """JSON bodies that are wrong in every way a parser or a handler can meet: not JSON, not an
    object, too deep, too big, wrong types for known keys, wrong encodings."""
    known = st.sampled_from(keys or ["x"])
    objects = st.dictionaries(st.one_of(known, NASTY_TEXT), JSON_VALUES, max_size=8)
    return st.one_of(
        objects.map(lambda o: json.dumps(o, ensure_ascii=False).encode()),
        objects.map(lambda o: json.dumps(o, ensure_ascii=False).encode("utf-16")),
        objects.map(lambda o: json.dumps(o, ensure_ascii=False).encode("gb18030")),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.integers(min_value=100, max_value=200_000).map(deep_json),
        st.integers(min_value=100, max_value=200_000).map(lambda d: deep_json(d, "{")),
        st.sampled_from([b"", b"{", b"}", b"nul", b"NaN", b"1e99999", b"-", b'{"a":1,"a":2}', b'"\\ud800"',
                         b'{"\\u0000":"\\u0000"}', b"\xff\xfe\xfd", b"[]", b"null", b"{}" * 3,
                         b'{"a": ' + b"9" * 5000 + b"}"]),
        st.binary(max_size=512),
        st.just(b'{"a":"' + b"x" * (MAX_BODY + 10) + b'"}'),
    )


@st.composite
def timestamps(draw: Any, now: int, window: int = 300, millis: bool = False) -> str:
    """Fresh, stale, future, malformed and absurd timestamps."""
    scale = 1000 if millis else 1
    choice = draw(st.sampled_from(["fresh", "stale", "future", "garbage", "absurd"]))
    if choice == "fresh":
        return str((now + draw(st.integers(-window + 5, window - 5))) * scale)
    if choice == "stale":
        return str((now - draw(st.integers(window + 1, 10 ** 8))) * scale)
    if choice == "future":
        return str((now + draw(st.integers(window + 1, 10 ** 8))) * scale)
    if choice == "absurd":
        return draw(st.sampled_from(["0", "9" * 12, "9" * 16, "9" * 40, "-1", "1e9", "0x10", "+5"]))
    return draw(st.text(max_size=20))

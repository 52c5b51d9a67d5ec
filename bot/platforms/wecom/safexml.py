"""XML from the network, parsed with defusedxml only: no DTDs, no entities, no external references.

`parse_xml` returns the xmltodict-like shape WeCom SDKs expose: an element with only text is its
text, an element with children is a dict, and a child name that repeats becomes a list (so one
SelectedItem is a dict and several are a list, exactly as in wechatpy).
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_DEPTH = 16


class UnsafeXml(ValueError):
    """The document is malformed, too deep, or uses DTDs/entities/external references."""


def parse_xml(data: bytes | str, *, root: str = "xml") -> dict[str, Any]:
    try:
        element = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as e:
        raise UnsafeXml(f"forbidden XML construct: {type(e).__name__}") from None
    except (ParseError, ValueError, TypeError, LookupError) as e:  # LookupError: unknown declared encoding
        raise UnsafeXml(f"malformed XML: {e}") from None
    if element.tag != root:
        raise UnsafeXml(f"root element is <{element.tag}>, expected <{root}>")
    value = _to_value(element, 0)
    return value if isinstance(value, dict) else {}


def _to_value(element: Element, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise UnsafeXml("XML nests too deeply")
    children = list(element)
    if not children:
        return element.text or ""
    out: dict[str, Any] = {}
    for child in children:
        value = _to_value(child, depth + 1)
        if child.tag in out:
            prev = out[child.tag]
            if isinstance(prev, list):
                prev.append(value)
            else:
                out[child.tag] = [prev, value]
        else:
            out[child.tag] = value
    return out

"""Passive replies to a template_card_event (doc/90241): update the tapped user's card within 5 s.

Handlers stay platform-neutral; what they return is read by `card_update_from`:
- a mapping ``{"replace_name": "已认领"}``: grey the button out with that text (update_button);
- a mapping ``{"template_card": {...}}``: replace the whole card (update_template_card), the card
  in the JSON shape message/send uses;
- a mapping ``{"wecom": <one of the above>}``, or any object with a ``tap_reply()`` method
  returning one (bot.handlers.card_actions.TapAnswer);
- anything else (None, True, …): no passive reply, empty 200.
"""

from __future__ import annotations

from typing import Any, Mapping

_SPECIAL_NAMES = {"keyname": "KeyName", "userid": "UserId", "appid": "AppId", "pagepath": "PagePath",
                  "checkbox": "CheckBox"}
# The passive reply updates the tapped card itself; the card's task_id is not re-sent.
_DROPPED_KEYS = {"task_id"}


def card_update_from(result: Any) -> dict[str, Any] | None:
    if result is None or isinstance(result, bool):
        return None
    hook = getattr(result, "tap_reply", None)
    if callable(hook):
        result = hook()
    if isinstance(result, Mapping) and isinstance(result.get("wecom"), Mapping):
        result = result["wecom"]
    if not isinstance(result, Mapping):
        return None
    if isinstance(result.get("replace_name"), str) and result["replace_name"]:
        return {"replace_name": result["replace_name"]}
    if isinstance(result.get("template_card"), Mapping):
        return {"template_card": dict(result["template_card"])}
    return None


def xml_name(json_key: str) -> str:
    if json_key in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[json_key]
    return "".join(part[:1].upper() + part[1:] for part in json_key.split("_"))


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _element(name: str, value: Any) -> str:
    if isinstance(value, Mapping):
        inner = "".join(_element(xml_name(k), v) for k, v in value.items() if k not in _DROPPED_KEYS)
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, (list, tuple)):
        return "".join(_element(name, item) for item in value)
    if isinstance(value, bool):
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    if isinstance(value, (int, float)):
        return f"<{name}>{value}</{name}>"
    return f"<{name}>{_cdata('' if value is None else str(value))}</{name}>"


def passive_reply_xml(update: Mapping[str, Any], *, to_user: str, corp_id: str, create_time: int) -> str:
    """The plaintext reply (it is encrypted before it leaves)."""
    head = (f"<xml><ToUserName>{_cdata(to_user)}</ToUserName><FromUserName>{_cdata(corp_id)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime>")
    if "replace_name" in update:
        return (head + "<MsgType><![CDATA[update_button]]></MsgType>"
                f"<Button><ReplaceName>{_cdata(update['replace_name'])}</ReplaceName></Button></xml>")
    card = update["template_card"]
    return head + "<MsgType><![CDATA[update_template_card]]></MsgType>" + _element("TemplateCard", card) + "</xml>"

"""DingTalk's official CRM (客户管理): customer and contact records as leadbot reads them.

A ``ding_paas_object_data_*`` event carries ids only; the record is read back through

- ``POST /v1.0/crm/personalCustomers/batchQuery?relationType=crm_customer|crm_customer_personal``
  (api host; body: a JSON array of instance ids; answer ``{"result": [{instanceId, objectType,
  creatorUserId, data{…}, extendData{…}, permission{ownerStaffIds, participantStaffIds}}]}``),
- ``POST /topapi/crm/objectdata/contact/list`` (oapi host; body ``{"data_id_list": "id1,id2"}``;
  answer ``{"result_list": [{instance_id, object_type, creator_userid, data: "<JSON text>",
  extend_data: "<JSON text>", permission{owner_userid_list, participant_userid_list}}]}``).

Field values in ``data`` are either plain text or ``{"value": …, "extendValue": "<JSON text>"}``
(phone, select and relation fields); a ``value`` may itself be a JSON list in text. The form is
configurable per company, so fields are recognised by the system keys and by what their key says
(``…phone…``, ``…mobile…``, ``…email…``, ``…company…``), not by a fixed schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

CUSTOMER_TYPES = ("crm_customer", "crm_customer_personal")
CONTACT_TYPE = "crm_contact"
READABLE_TYPES = CUSTOMER_TYPES + (CONTACT_TYPE,)
BATCH_MAX = 200  # both list APIs: at most 200 ids per call

_NAME_KEYS = ("customer_name", "contact_name")
_COMPANY_KEYS = ("customer_company_name", "company_name", "contact_company", "customer_company")


@dataclass(frozen=True, slots=True)
class CrmRecord:
    """One customer or contact record, in leadbot's terms. ``owner_userids`` come from the
    record's permission (负责人), the creator from ``creatorUserId`` (both DingTalk userids)."""

    instance_id: str
    object_type: str
    creator_userid: str = ""
    owner_userids: tuple[str, ...] = ()
    participant_userids: tuple[str, ...] = ()
    name: str = ""
    company: str = ""
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    unionid: str = ""
    data: Mapping[str, Any] | None = None

    @property
    def is_company(self) -> bool:
        """An enterprise customer (企业客户): its name is the company's."""
        return self.object_type == "crm_customer"


def _json(value: Any) -> Any:
    if isinstance(value, (str, bytes)) and value and value[:1] in ("{", "[", b"{", b"["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _obj(value: Any) -> dict[str, Any]:
    parsed = _json(value)
    return dict(parsed) if isinstance(parsed, Mapping) else {}


def field_text(value: Any) -> list[str]:
    """Every text a field value holds: "x", {"value": "x"}, {"value": "[\\"x\\", \\"y\\"]"}, ["x"]."""
    if isinstance(value, Mapping):
        value = value.get("value")
    value = _json(value)
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for v in value:
            out.extend(field_text(v))
        return out
    if value is None or isinstance(value, bool):
        return []
    text = str(value).strip()
    return [text] if text else []


def _first(data: Mapping[str, Any], keys: Iterable[str]) -> str:
    for key in keys:
        texts = field_text(data.get(key))
        if texts:
            return texts[0]
    return ""


def _by_key(data: Mapping[str, Any], *words: str) -> list[str]:
    out: list[str] = []
    for key, value in data.items():
        low = str(key).lower()
        if any(w in low for w in words):
            out.extend(field_text(value))
    return list(dict.fromkeys(out))


def _ids(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value if v) if isinstance(value, list) else ()


def record_from_v1(row: Mapping[str, Any]) -> CrmRecord:
    """An item of personalCustomers/batchQuery's ``result``."""
    permission = row.get("permission") if isinstance(row.get("permission"), Mapping) else {}
    return _record(str(row.get("instanceId") or ""), str(row.get("objectType") or ""),
                   str(row.get("creatorUserId") or ""), _ids(permission.get("ownerStaffIds")),
                   _ids(permission.get("participantStaffIds")), _obj(row.get("data")), _obj(row.get("extendData")))


def record_from_oapi(row: Mapping[str, Any]) -> CrmRecord:
    """An item of topapi/crm/objectdata/*/list's ``result_list`` (data and extend_data are JSON text)."""
    permission = row.get("permission") if isinstance(row.get("permission"), Mapping) else {}
    return _record(str(row.get("instance_id") or ""), str(row.get("object_type") or ""),
                   str(row.get("creator_userid") or ""), _ids(permission.get("owner_userid_list")),
                   _ids(permission.get("participant_userid_list")), _obj(row.get("data")),
                   _obj(row.get("extend_data")))


def _record(instance_id: str, object_type: str, creator: str, owners: tuple[str, ...],
            participants: tuple[str, ...], data: dict[str, Any], extend: dict[str, Any]) -> CrmRecord:
    name = _first(data, _NAME_KEYS)
    company = _first(data, _COMPANY_KEYS)
    if not company:
        company = next(iter(_by_key({k: v for k, v in data.items() if k not in _NAME_KEYS}, "company", "corp")), "")
    phones = tuple(p for p in _by_key(data, "phone", "mobile") if "*" not in p)  # masked: useless
    emails = tuple(e for e in _by_key(data, "email", "mail") if "@" in e)
    unionid = str(extend.get("contactUnionId") or extend.get("unionId") or "")
    return CrmRecord(instance_id=instance_id, object_type=object_type, creator_userid=creator,
                     owner_userids=owners, participant_userids=participants, name=name,
                     company=company, phones=phones, emails=emails, unionid=unionid, data=data)


def candidate_reps(record: CrmRecord) -> tuple[str, ...]:
    """Who on the sales side this record belongs to, first choice first: its owners (负责人),
    then whoever created it."""
    return tuple(dict.fromkeys([*record.owner_userids, record.creator_userid] if record.creator_userid
                               else record.owner_userids))

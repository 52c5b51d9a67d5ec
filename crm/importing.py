"""CSV imports of reps and customers: row by row, each row created, updated or rejected with a
reason, so a 50,000-row export with a few bad lines still imports and says which lines failed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping, Sequence

from sqlalchemy import select

from store import dto
from store.fields import DELIVERY_PROFILES, REP_ROLES, REP_STATUSES, split_list
from identity.customers import normalized_columns, suggestions, survivor
from identity.matcher import POSSIBLE, SAME
from identity.normalize import is_role_mailbox, normalize_email, normalize_phone
from store.models import Customer, Rep, Team

if TYPE_CHECKING:
    from crm.sql_store import SqlCRMStore

REP_COLUMNS = ("id", "name", "wecom_userid", "dingtalk_userid", "team", "role", "manager", "regions",
               "product_lines", "weight", "capacity", "status", "delivery")
CUSTOMER_COLUMNS = ("id", "name", "phone", "email", "company", "title", "wechat_unionid",
                    "wecom_external_userid", "id_number", "address", "city", "owner")
BATCH = 500


class RowError(ValueError):
    pass


def _line_numbers(rows: Sequence[Mapping[str, Any]]) -> Sequence[int]:
    """Each row's line in the file: given by the reader (crm.csv_files.CsvRows.lines, which
    counts multi-line fields and skipped broken rows), else counted with line 1 the header."""
    lines = getattr(rows, "lines", None)
    return lines if lines is not None and len(lines) == len(rows) else range(2, len(rows) + 2)


def _clean(row: Mapping[str, Any]) -> dict[str, str]:
    return {(k or "").strip().lower(): (v or "").strip() if isinstance(v, str) else ("" if v is None else str(v))
            for k, v in row.items() if k is not None}


def _rep_values(row: dict[str, str]) -> dict[str, Any]:
    if not row.get("id"):
        raise RowError("id is empty")
    if not row.get("name"):
        raise RowError("name is empty")
    role = (row.get("role") or "rep").lower()
    if role not in REP_ROLES:
        raise RowError(f"role {role!r} is not one of {', '.join(REP_ROLES)}")
    status = (row.get("status") or "active").lower()
    if status not in REP_STATUSES:
        raise RowError(f"status {status!r} is not one of {', '.join(REP_STATUSES)}")
    delivery = (row.get("delivery") or "auto").lower()
    if delivery not in DELIVERY_PROFILES:
        raise RowError(f"delivery {delivery!r} is not one of {', '.join(DELIVERY_PROFILES)}")
    try:
        weight = float(row.get("weight") or 1)
        capacity = int(float(row.get("capacity") or 0))
    except ValueError:
        raise RowError("weight and capacity must be numbers") from None
    if weight < 0 or capacity < 0:
        raise RowError("weight and capacity must not be negative")
    if not row.get("wecom_userid") and not row.get("dingtalk_userid"):
        raise RowError("needs a wecom_userid or a dingtalk_userid to reach the rep")
    return dict(external_id=row["id"], name=row["name"], wecom_userid=row.get("wecom_userid") or None,
                dingtalk_userid=row.get("dingtalk_userid") or None, role=role, status=status,
                delivery=delivery, weight=weight, capacity=capacity,
                regions=split_list(row.get("regions")), product_lines=split_list(row.get("product_lines")),
                attributes={k: v for k, v in row.items() if k not in REP_COLUMNS and v})


async def import_reps(store: "SqlCRMStore", rows: Sequence[Mapping[str, Any]], *,
                      progress: Callable[[int], None] | None = None,
                      preserve: Collection[str] = ()) -> dto.ImportSummary:
    """`preserve`: Rep columns an update leaves as they are (the directory sync keeps what sales
    ops set by hand: weight, capacity, regions, ...); a created rep still takes the row's values."""
    created = updated = 0
    rejected: list[dto.RowOutcome] = []
    now = store.clock.now()
    managers: list[tuple[str, str]] = []  # (rep external id, manager external id)
    seen_ids: dict[str, int] = {}
    async with store.sessions() as session, session.begin():
        teams = {t.name: t for t in (await session.execute(select(Team))).scalars()}
        for n, raw in zip(_line_numbers(rows), rows):
            row = _clean(raw)
            try:
                if row.get("id") in seen_ids:
                    raise RowError(f"id {row['id']!r} repeats line {seen_ids[row['id']]}")
                values = _rep_values(row)
                for col in ("wecom_userid", "dingtalk_userid"):
                    if values[col]:
                        other = (await session.execute(select(Rep.external_id).where(
                            getattr(Rep, col) == values[col]))).scalar_one_or_none()
                        if other and other != values["external_id"]:
                            raise RowError(f"{col} {values[col]!r} already belongs to rep {other}")
            except RowError as e:
                rejected.append(dto.RowOutcome(line=n, outcome="rejected", reason=str(e), key=row.get("id", "")))
                if progress:
                    progress(1)
                continue
            seen_ids[values["external_id"]] = n
            team_name = row.get("team") or ""
            team = None
            if team_name:
                team = teams.get(team_name)
                if team is None:
                    team = Team(name=team_name, created_at=now)
                    session.add(team)
                    await session.flush()
                    teams[team_name] = team
            rep = (await session.execute(select(Rep).where(Rep.external_id == values["external_id"]))).scalar_one_or_none()
            if rep is None:
                rep = Rep(created_at=now, updated_at=now, team_id=team.id if team else None, **values)
                session.add(rep)
                created += 1
            else:
                for k, v in values.items():
                    if k not in preserve:
                        setattr(rep, k, v)
                rep.team_id = team.id if team else None
                rep.updated_at = now
                updated += 1
            await session.flush()
            if row.get("manager"):
                managers.append((values["external_id"], row["manager"]))
            if team is not None and values["role"] == "manager":
                team.manager_id = rep.id
            if progress:
                progress(1)
        notes = []
        by_external = {r.external_id: r for r in (await session.execute(select(Rep))).scalars()}
        for rep_ext, manager_ext in managers:
            manager = by_external.get(manager_ext)
            if manager is None:
                notes.append(f"rep {rep_ext}: manager {manager_ext!r} is not a known rep id; left empty")
                continue
            by_external[rep_ext].manager_id = manager.id
    return dto.ImportSummary(created=created, updated=updated, rejected=tuple(rejected), notes=tuple(notes))


def customer_identities(row: Mapping[str, str]) -> tuple[list[tuple[str, str, bool, str]], list[str]]:
    """(kind, value, strong, raw) for a CSV row, plus warnings for identifiers that do not parse."""
    out: list[tuple[str, str, bool, str]] = []
    warnings: list[str] = []
    phone = row.get("phone", "")
    for part in [p for p in phone.replace("；", ";").replace("/", ";").split(";") if p.strip()]:
        normalized = normalize_phone(part)
        if normalized:
            out.append(("phone", normalized[1], normalized[0] == "mobile", part.strip()))
        else:
            warnings.append(f"phone {part.strip()!r} is not a valid number (kept as an attribute)")
    if row.get("email"):
        mail = normalize_email(row["email"])
        if mail:
            # sales@, info@: kept as the company's (weak), never as one person's identity.
            out.append(("email", mail, not is_role_mailbox(mail), row["email"]))
        else:
            warnings.append(f"email {row['email']!r} is not valid (kept as an attribute)")
    for column, kind in (("wechat_unionid", "unionid"), ("wecom_external_userid", "external_userid"),
                         ("id_number", "id_number")):
        if row.get(column):
            value = row[column].strip()
            out.append((kind, value.upper() if kind == "id_number" else value, True, value))
    return out, warnings


async def import_customers(store: "SqlCRMStore", rows: Sequence[Mapping[str, Any]], *,
                           progress: Callable[[int], None] | None = None) -> dto.ImportSummary:
    from identity.service import CustomerImportSummary, link_identity_in

    created = updated = 0
    rejected: list[dto.RowOutcome] = []
    notes: list[str] = []
    merged: list[dto.RowOutcome] = []  # rows that were an existing customer (a strong identifier)
    suspected: list[dto.RowOutcome] = []  # rows imported as new that may be an existing customer
    now = store.clock.now()
    async with store.sessions() as session, session.begin():
        reps = {r.external_id: r.id for r in (await session.execute(select(Rep))).scalars()}
        for n, raw in zip(_line_numbers(rows), rows):
            row = _clean(raw)
            if progress:
                progress(1)
            if not any(row.get(c) for c in ("name", "phone", "email", "company", "wechat_unionid",
                                             "wecom_external_userid", "id_number")):
                rejected.append(dto.RowOutcome(line=n, outcome="rejected", key=row.get("id", ""),
                                               reason="no name, company or identifier: nothing to import"))
                continue
            owner_id = None
            if row.get("owner"):
                owner_id = reps.get(row["owner"])
                if owner_id is None:
                    notes.append(f"line {n}: owner {row['owner']!r} is not a known rep id; left unowned")
            ids, warnings = customer_identities(row)
            notes.extend(f"line {n}: {w}" for w in warnings)
            attributes = {k: v for k, v in row.items() if k not in CUSTOMER_COLUMNS and v}
            for w_col in ("phone", "email"):
                if row.get(w_col) and not any(i[3] == row[w_col] for i in ids):
                    attributes.setdefault(f"raw_{w_col}", row[w_col])
            # Identity resolution (identity): the same id updates; a strong identifier
            # shared with a customer merges the row into it; weak evidence only flags it.
            customer, decision = await _match_customer_row(session, row)
            fields = dict(display_name=row.get("name", "")[:256], company=row.get("company", "")[:256],
                          title=row.get("title", "")[:128], city=row.get("city", "")[:64],
                          address=row.get("address", "")[:512])
            if customer is None:
                if decision is not None and decision.kind == POSSIBLE:
                    attributes["possible_duplicates"] = suggestions(decision.candidates)
                    best = decision.candidates[0]
                    reason = (f"possible duplicate of customer {await _label(session, best.customer_id)} "
                              f"({best.score:.2f}: {best.reason})")
                    suspected.append(dto.RowOutcome(line=n, outcome="suspected", reason=reason, key=row.get("id", "")))
                    notes.append(f"line {n}: {reason}; imported as a new customer, to be confirmed")
                customer = Customer(external_id=row.get("id") or None, owner_id=owner_id, attributes=attributes,
                                    created_at=now, updated_at=now, **fields,
                                    **normalized_columns(fields["display_name"], fields["company"]))
                session.add(customer)
                created += 1
            elif decision is not None:
                # Merged into an existing customer: fill its blanks, keep differing values aside.
                kind = next((e.field for e in decision.evidence if e.strong), "identifier")
                kind = "phone" if kind == "mobile" else kind
                reason = f"same {kind} as customer {customer.external_id or customer.id}"
                merged.append(dto.RowOutcome(line=n, outcome="merged", reason=f"{reason} ({decision.reason})",
                                             key=row.get("id", "")))
                notes.append(f"line {n}: {reason}; merged into it")
                aside: dict[str, Any] = {}
                for k, v in fields.items():
                    if v and not getattr(customer, k):
                        setattr(customer, k, v)
                    elif v and getattr(customer, k) != v:
                        aside[k] = v
                if owner_id and not customer.owner_id:
                    customer.owner_id = owner_id
                elif owner_id and owner_id != customer.owner_id:
                    aside["owner_id"] = owner_id
                attrs = dict(customer.attributes or {})
                for k, v in attributes.items():
                    if k not in attrs:
                        attrs[k] = v
                    elif attrs[k] != v:
                        aside.setdefault("attributes", {})[k] = v
                if aside:
                    history = dict(attrs.get("merged_from") or {})
                    history[f"import line {n}" + (f" ({row['id']})" if row.get("id") else "")] = aside
                    attrs["merged_from"] = history
                if row.get("id") and not customer.external_id:
                    customer.external_id = row["id"]
                customer.attributes = attrs
                for col, value in normalized_columns(customer.display_name, customer.company).items():
                    setattr(customer, col, value)
                customer.updated_at = now
                customer.version += 1
                updated += 1
            else:
                for k, v in fields.items():
                    if v:
                        setattr(customer, k, v)
                if owner_id:
                    customer.owner_id = owner_id
                customer.attributes = {**(customer.attributes or {}), **attributes}
                for col, value in normalized_columns(customer.display_name, customer.company).items():
                    setattr(customer, col, value)
                customer.updated_at = now
                customer.version += 1
                updated += 1
            await session.flush()
            for kind, value, strong, raw_value in ids:
                result = await link_identity_in(session, customer.id, kind, value, raw=raw_value, now=now,
                                                strong=strong)
                if result.conflict_customer_id is not None:
                    notes.append(f"line {n}: {kind} already belongs to customer "
                                 f"{await _label(session, result.conflict_customer_id)}; not linked twice")
    return CustomerImportSummary(created=created, updated=updated, rejected=tuple(rejected), notes=tuple(notes),
                                 merged=tuple(merged), suspected=tuple(suspected))


async def _match_customer_row(session: Any, row: Mapping[str, str]) -> tuple[Customer | None, Any]:
    """(customer, decision): the customer with this row's id (decision None: a plain update), or
    the one a strong identifier names (decision "same"), or None with the matcher's decision."""
    from identity.dedupe import record_from_row
    from identity.service import sql_decide

    if row.get("id"):
        customer = (await session.execute(
            select(Customer).where(Customer.external_id == row["id"]))).scalar_one_or_none()
        if customer is not None:
            if customer.status == "merged":
                customer = await session.get(Customer, await survivor(session, customer.id))
            return customer, None
    decision = await sql_decide(session, record_from_row(None, row))
    if decision.kind == SAME:
        return await session.get(Customer, decision.customer_id), decision
    return None, decision


async def _label(session: Any, customer_id: Any) -> str:
    external = (await session.execute(
        select(Customer.external_id).where(Customer.id == customer_id))).scalar_one_or_none()
    return f"{external} (#{customer_id})" if external else f"#{customer_id}"

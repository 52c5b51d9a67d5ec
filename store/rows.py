"""ORM rows (or Core rows of the same tables) -> the DTOs the rest of leadbot gets: the one
mapping, for the store, routing and the lead changes alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from store import dto
from store.models import Lead, Rep, Team


def lead_dto(row: Lead | Row[Any]) -> dto.Lead:
    return dto.Lead(
        id=row.id, customer_id=row.customer_id, source_channel=row.source_channel,
        source_ref=row.source_ref, campaign=row.campaign, name=row.name, phone=row.phone,
        email=row.email, company=row.company, title=row.title, region=row.region, city=row.city,
        product_line=row.product_line, language=row.language, amount=row.amount, note=row.note,
        stage=row.stage, status=row.status, owner_id=row.owner_id, team_id=row.team_id,
        extra=dict(row.extra or {}), flags=tuple(row.flags or ()), created_at=row.created_at,
        updated_at=row.updated_at, assigned_at=row.assigned_at, claimed_at=row.claimed_at,
        first_contact_at=row.first_contact_at, stage_entered_at=row.stage_entered_at,
        last_activity_at=row.last_activity_at, version=row.version, external_id=row.external_id,
        source=row.source or "")


def rep_dto(row: Rep | Row[Any], team_name: str = "") -> dto.Rep:
    return dto.Rep(
        id=row.id, external_id=row.external_id, name=row.name, wecom_userid=row.wecom_userid,
        dingtalk_userid=row.dingtalk_userid, team_id=row.team_id, team=team_name, role=row.role,
        manager_id=row.manager_id, regions=tuple(row.regions or ()),
        product_lines=tuple(row.product_lines or ()), weight=row.weight, capacity=row.capacity,
        status=row.status, delivery=row.delivery, backup_id=row.backup_id, daily_cap=row.daily_cap,
        working_hours=row.working_hours, sidelined=row.sidelined, miss_streak=row.miss_streak,
        last_active_at=row.last_active_at)


def team_dto(row: Team) -> dto.Team:
    return dto.Team(id=row.id, name=row.name, manager_id=row.manager_id,
                    wecom_robot_key=row.wecom_robot_key, wecom_pool_chat=row.wecom_pool_chat,
                    dingtalk_robot_webhook=row.dingtalk_robot_webhook,
                    dingtalk_robot_secret=row.dingtalk_robot_secret,
                    dingtalk_pool_conversation=row.dingtalk_pool_conversation)

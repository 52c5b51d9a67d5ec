"""The CRMStore boundary: everything leadbot asks of the CRM, as one async protocol over DTOs.

SqlCRMStore (crm.sql_store) is the first implementation; a bridge to an existing CRM
implements the same protocol, and handlers do not change.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

from store.dto import Customer, ImportSummary, Lead, LeadInput, Rep, Team


class CRMStore(Protocol):
    async def ping(self) -> bool:
        """True when the store answers; used by /readyz."""

    async def create_lead(self, lead: LeadInput) -> tuple[Lead, bool]:
        """Stores a lead (idempotent on its intake key); returns it and whether it is new."""

    async def get_lead(self, lead_id: int) -> Lead | None: ...

    async def list_leads(self, *, owner_id: int | None = None, status: str | None = None,
                         limit: int = 50) -> Sequence[Lead]: ...

    async def search_leads(self, text: str, limit: int = 10) -> Sequence[Lead]: ...

    async def get_customer(self, customer_id: int) -> Customer | None: ...

    async def get_rep(self, rep_id: int) -> Rep | None: ...

    async def rep_by_platform_id(self, platform: str, user_id: str) -> Rep | None: ...

    async def list_reps(self, *, team_id: int | None = None, status: str | None = None) -> Sequence[Rep]: ...

    async def get_team(self, team_id: int) -> Team | None: ...

    async def import_reps(self, rows: Sequence[Mapping[str, str]], *, progress: Any = None) -> ImportSummary: ...

    async def import_customers(self, rows: Sequence[Mapping[str, str]], *,
                               progress: Any = None) -> ImportSummary: ...

    async def audit(self, actor: str, action: str, subject_type: str = "", subject_id: str = "",
                    data: Mapping[str, Any] | None = None) -> None: ...

"""The community issues read model: what the event carries (nothing personal)."""

from __future__ import annotations

import json

from sqlalchemy import Column, Integer, String, Table, Text, delete

from kyosei_events import DecodedEvent, UnitOfWork
from kyosei_events.catalogue.coordination import CommunityIssueRaised
from kyosei_platform.api import rfc3339

from ..projections import metadata

community_issues = Table(
    "community_issues",
    metadata,
    Column("issue_id", String(64), primary_key=True),
    Column("area", String(200), nullable=False, index=True),
    Column("theme", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("concerns", Text, nullable=False),  # JSON list
    Column("cases_seen", String(8), nullable=False),
    Column("raised_by", String(64), nullable=False),
    Column("raised_at", String(40), nullable=False),
    Column("version", Integer, nullable=False),
)


class CommunityIssueList:
    """One row per community issue."""

    name = "coordination.community_issues"

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        for d in events:
            e = d.event
            if isinstance(e, CommunityIssueRaised):
                await uow.conn.execute(
                    community_issues.insert().values(
                        issue_id=e.issue_id,
                        area=e.area,
                        theme=e.theme,
                        description=e.description,
                        concerns=json.dumps([c.value for c in e.concerns]),
                        cases_seen=e.cases_seen,
                        raised_by=e.raised_by,
                        raised_at=rfc3339(e.raised_at),
                        version=d.recorded.version,
                    )
                )

    async def reset(self, uow: UnitOfWork) -> None:
        await uow.conn.execute(delete(community_issues))

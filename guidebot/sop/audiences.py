"""An audience (a drop's, an SOP enrolment's) as the SQL filter of the relations it admits."""

from __future__ import annotations

from datetime import datetime, timedelta

from guidebot.content.sop_spec import Audience
from guidebot.db.engine import Database
from guidebot.db.repo.audiences import AudienceFilter, Once
from guidebot.segments.service import segment_match
from guidebot.settings import TenantSettings


async def audience_filter(db: Database, tenant: TenantSettings, audience: Audience,
                          now: datetime) -> AudienceFilter:
    """The audience's lists, and its segment's conditions as they match at `now` (NotFound
    when the tenant has no such segment)."""
    segment = (None if audience.segment is None
               else await segment_match(db, tenant, audience.segment, now))
    return AudienceFilter(tags_any=audience.tags_any, tags_all=audience.tags_all,
                          tags_none=audience.tags_none, stores=audience.stores,
                          guides=audience.guides, segment=segment)


def once_for(tenant: TenantSettings, now: datetime) -> Once:
    """Each customer reached once (an HQ 群发, an enrolment by audience), the exclusive guide
    as the tenant's bindings stand at `now` (valid binding_validity_days, when set)."""
    validity = tenant.commission.binding_validity_days
    return Once(bound_after=now - timedelta(days=validity) if validity > 0 else None)

"""The CLI's tenant arguments: one named tenant checked against the config, or every tenant."""

from __future__ import annotations

from guidebot.errors import ValidationFailed
from guidebot.settings import Settings, TenantSettings


def known_tenant(settings: Settings, tenant_id: str) -> TenantSettings:
    """The tenant named on the command line; a clear refusal naming the known ones."""
    if tenant_id not in settings.tenants:
        raise ValidationFailed(f"unknown tenant {tenant_id!r}; known: "
                               + ", ".join(settings.tenants))
    return settings.tenant(tenant_id)


def tenant_ids(settings: Settings, tenant_id: str | None) -> list[str]:
    """`--tenant T` (checked), or every tenant of the config when it is not given."""
    return [known_tenant(settings, tenant_id).id] if tenant_id else list(settings.tenants)

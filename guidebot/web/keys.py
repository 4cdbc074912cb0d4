"""The application keys web handlers read their collaborators from."""

from __future__ import annotations

from aiohttp import web

from guidebot.services import Services

SERVICES = web.AppKey("services", Services)

"""OpenAPI paths of the SOP admin API: sops, preview, enroll, tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_STEP = {"type": "object", "properties": {
    "index": {"type": "integer"}, "at": {"type": ["string", "null"], "format": "date-time"},
    "channel": {"type": "string", "enum": ["welcome", "guide_task", "reminder", "moment"]},
    "message": {"type": "string"}, "note": {"type": "string"}}}
_SOP = {"type": "object", "properties": {
    "id": {"type": "string"}, "title": {"type": "string"}, "enabled": {"type": "boolean"},
    "version": {"type": "integer"}, "trigger": {"type": "object"},
    "exit": {"type": "array", "items": {"type": "string"}}, "quiet_hours": {"type": "string"},
    "on_quota": {"type": "string", "enum": ["defer", "skip"]},
    "steps": {"type": "array"}, "enrollments": {"type": "object"}}}
_TASK = {"type": "object", "properties": {
    "id": {"type": "integer"}, "kind": {"type": "string"}, "source": {"type": "string"},
    "guide": {"type": "string"}, "step": {"type": "integer"}, "message": {"type": "string"},
    "recipients": {"type": "integer"}, "status": {"type": "string"},
    "msgid": {"type": ["string", "null"]}, "confirmed": {"type": "integer"},
    "reminders": {"type": "integer"}, "note": {"type": ["string", "null"]},
    "delivery": {"type": ["object", "null"], "description": "the outbox row: status "
                 "(done, failed, dead, …), attempts, last_error, next_try_at"},
    "detail": {"type": "object", "description": "kind-specific: reminders sent; for moments "
               "the job result (job_status, moment_id, invalid_senders, invalid_tags)"}}}
_LIBRARY_ERRORS = {"type": "array", "description": "problems of the newest content_library "
                   "edit that failed validation (the library in force stays); empty when none",
                   "items": {"type": "object", "properties": {
                       "file": {"type": "string"}, "line": {"type": ["integer", "null"]},
                       "message": {"type": "string"}}}}
_SOP_ID = {"name": "sop_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"},
            "description": description}


def sop_paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """`op` is openapi._op (summary, schema, extra_params, body, status)."""
    return {
        "/api/v1/{tenant}/sops": {"get": op("SOPs: newest version, steps, enrollment counts", {
            "type": "object", "properties": {"sops": {"type": "array", "items": _SOP},
                                             "library_errors": _LIBRARY_ERRORS}})},
        "/api/v1/{tenant}/sops/{sop_id}/preview": {"get": op(
            "When each step would fire for a customer added at added_at (quiet hours, quota)",
            {"type": "object", "properties": {"steps": {"type": "array", "items": _STEP}}},
            (_SOP_ID, _query("added_at", "ISO 8601 with offset", required=True)))},
        "/api/v1/{tenant}/sops/{sop_id}/enroll": {"post": op(
            "Enroll a customer of a guide (idempotent: 200 with created false when enrolled)",
            {"type": "object", "properties": {"enrollment_id": {"type": "integer"},
                                              "created": {"type": "boolean"}}},
            (_SOP_ID,), body={"type": "object", "required": ["external_userid", "guide"],
                              "properties": {"external_userid": {"type": "string"},
                                             "guide": {"type": "string"}}},
            status="201")},
        "/api/v1/{tenant}/tasks": {"get": op(
            "Guide tasks, reminders and moments from SOPs and drops, with delivery state",
            {"type": "object", "properties": {"tasks": {"type": "array", "items": _TASK}}},
            (_query("guide", "a guide's userid"),
             _query("status", "task status (queued, sent, confirmed, cancelled) or delivery "
                    "status (failed, dead)")))},
    }

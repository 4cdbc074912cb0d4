"""A local OpenAI-compatible server (`POST /v1/chat/completions`) with scripted answers per
customer message: an answer, an error status, a slow answer, junk, a dropped connection, or
the system prompt echoed back (a leak)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Script:
    answer: str | None = None
    status: int = 200
    delay_s: float = 0.0
    junk: str | None = None          # a raw body instead of a completion
    drop: bool = False               # close the connection without an answer
    echo_system: bool = False        # answer with the system prompt (a leak)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Script:
        return cls(**raw)


@dataclass
class FakeLlm:
    scripts: dict[str, Script] = field(default_factory=dict)
    default: Script = field(default_factory=lambda: Script(answer="HANDOFF"))
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        return app

    def script(self, customer_message: str, **behaviour: Any) -> None:
        self.scripts[customer_message] = Script(**behaviour)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        messages = body.get("messages", [])
        user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        script = self.scripts.get(user, self.default)
        if script.delay_s:
            await asyncio.sleep(script.delay_s)
        if script.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if script.junk is not None:
            return web.Response(text=script.junk, content_type="application/json")
        if script.status != 200:
            return web.json_response({"error": {"message": "scripted failure"}},
                                     status=script.status)
        answer = system if script.echo_system else (script.answer or "")
        return web.json_response(_completion(body.get("model", ""), answer, system, user))


def _completion(model: str, answer: str, system: str, user: str) -> dict[str, Any]:
    return {"id": "chatcmpl-local", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": len(system) + len(user), "completion_tokens": len(answer),
                      "total_tokens": len(system) + len(user) + len(answer)}}

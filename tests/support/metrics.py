"""GET /metrics read back as samples (prometheus-client's parser), for tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.support.stack import Stack


async def scrape(stack: Stack) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    async with stack.http.get(f"{stack.bot_url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value)
    return samples


def value(samples: dict, name: str, **labels: str) -> float | None:  # type: ignore[type-arg]
    return samples.get(name, {}).get(tuple(sorted(labels.items())))

"""Run the reply-routing evaluation against the LLM a config names, and print the pass rate
per category.

    python scripts/eval_chat.py --config config.toml [--cases tests/data/chat_eval.jsonl] [-v]

The `model` field of a case (the scripted answer the tests' local server gives) is ignored
here: the configured model answers. Cases without it do not depend on the model
("deterministic") and must all pass; the exit status is 1 when one does not. With an empty
`[llm] base_url` every model-dependent case takes the no-LLM path.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guidebot.chat.evaluation import Case, Report, evaluate, load_cases  # noqa: E402
from guidebot.chat.routing import ChatRouter, load_router  # noqa: E402
from guidebot.settings import load_settings  # noqa: E402


def print_report(report: Report, verbose: bool) -> None:
    print(f"{'category':<16} {'passed':>7} {'cases':>6} {'rate':>7}")
    for category, (passed, total) in report.by_category().items():
        print(f"{category:<16} {passed:>7} {total:>6} {passed / total:>7.0%}")
    fixed = report.deterministic()
    print(f"{'deterministic':<16} {sum(r.passed for r in fixed):>7} {len(fixed):>6} "
          f"{report.rate(fixed):>7.0%}")
    print(f"{'all':<16} {sum(r.passed for r in report.results):>7} {len(report.results):>6} "
          f"{report.rate():>7.0%}")
    for result in report.results:
        if not result.passed and (verbose or result.case.deterministic):
            print(f"FAIL {result.case.id} [{result.decision.reason}]: "
                  + "; ".join(result.failures))


async def _evaluate(router: ChatRouter, cases: list[Case]) -> Report:
    try:
        return await evaluate(router, cases)
    finally:
        await router.llm.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config.toml"))
    parser.add_argument("--cases", type=Path, default=ROOT / "tests" / "data" / "chat_eval.jsonl")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list every failed case, not only deterministic ones")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    settings = load_settings(args.config)
    router = load_router(settings.content_library, settings.llm)
    print(f"model: {settings.llm.model or '-'} at {settings.llm.base_url or '(LLM off)'}")
    report = asyncio.run(_evaluate(router, load_cases(args.cases)))
    print_report(report, args.verbose)
    return 0 if report.rate(report.deterministic()) == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())

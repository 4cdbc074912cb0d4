"""What the reply router offers guides: grounded reply suggestions and a search of the reply
scripts (keyword replies and FAQ answers)."""

from __future__ import annotations

from guidebot.chat import grounding
from guidebot.chat.decision import CustomerContext, Inbound
from guidebot.chat.routing import ChatRouter
from guidebot.chat.words import fold, found
from guidebot.content.render import render
from guidebot.llm import prompts
from guidebot.llm.client import LlmUnavailable

MAX_RESULTS = 3


async def suggestions(router: ChatRouter, tenant: str, message: str) -> list[str]:
    """Up to three replies to a customer's message: the model's, each checked like a reply
    (numbers from the grounding only, no leaked prompt); without a usable model, the catalog
    and FAQ answers that match."""
    inbound = Inbound(tenant, "", "", message, CustomerContext(""))
    ground = router.grounding(inbound)
    facts = ground.text()
    kept: list[str] = []
    injected = found(router.content.words["injection"], message) is not None
    if router.llm.enabled and not injected:
        try:
            answer = await router.llm.complete(prompts.reply_suggestions(
                canary=router.canary, facts=facts, customer_message=message),
                tenant=tenant, purpose="suggest")
        except LlmUnavailable:
            answer = None
        if answer is not None:
            kept = [line for line in prompts.parse_suggestions(answer.text)
                    if not prompts.declined(line) and grounding.problem(
                        line, question=message, grounding=facts, canary=router.canary,
                        rule_lines=router.rule_lines) is None]
    if not kept:
        catalog = router.catalog_answer(inbound, info=True)
        faq = router.faq_match(message)
        kept = [d for d in (catalog.text if catalog else None, faq.answer if faq else None) if d]
        kept += [f.answer for f in ground.faqs]
    return list(dict.fromkeys(kept))[:MAX_RESULTS]


def scripts(router: ChatRouter, query: str) -> list[str]:
    """Keyword replies whose keywords or text name the query, then FAQ answers about it."""
    wanted = fold(query)
    out: list[str] = []
    for rule in router.content.replies:
        message = router.library.messages.get(rule.message)
        if message is None:
            continue
        if any(wanted in fold(k) or fold(k) in wanted for k in rule.keywords) \
                or wanted in fold(message.text):
            out.append(render(message.text, {}))
    out += [f.answer for f in router.content.faqs
            if wanted in fold(f.question) or wanted in fold(f.answer)
            or any(wanted in fold(k) or fold(k) in wanted for k in f.keywords)]
    faqs = {f.id: f for f in router.content.faqs}
    out += [faqs[h.id].answer for h in router.faq_texts.search(query, MAX_RESULTS)]
    return list(dict.fromkeys(out))[:MAX_RESULTS]

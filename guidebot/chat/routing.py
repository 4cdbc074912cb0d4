"""Reply routing (ReplyRouter): opt-out → asked for a person / complaint → keyword replies →
catalog (a named product's price or stock) → FAQ → short-message replies → grounded LLM →
catalog or handoff. Each decision carries its reason (never text)."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from guidebot.chat import grounding
from guidebot.chat.decision import Decision, Inbound, Route
from guidebot.chat.retrieval import Index, tokens
from guidebot.chat.words import fold, folded_word, found
from guidebot.content.catalog import Catalog, Product, load_catalog
from guidebot.content.chat import ChatContent, FaqEntry, load_chat_content
from guidebot.content.library import Library, load_library
from guidebot.content.render import render
from guidebot.llm import prompts
from guidebot.llm.client import LlmClient, LlmUnavailable, TokenMeter
from guidebot.settings import LlmSettings

log = logging.getLogger(__name__)

FAQ_COVERAGE = 0.6  # share of the question's words an FAQ entry must contain
FAQ_MIN_SHARED = 2
GROUNDING_HITS = 3
EXCERPT_CHARS = 40


def yuan(fen: int) -> str:
    """Integer fen as a price: ¥299, ¥799.50."""
    whole, cents = divmod(fen, 100)
    return f"¥{whole}" if cents == 0 else f"¥{whole}.{cents:02d}"


def product_fact(p: Product) -> prompts.ProductFact:
    return prompts.ProductFact(p.sku, p.name, p.category, yuan(p.price_fen), p.stock,
                               p.description, p.attributes)


@dataclass(frozen=True)
class Grounding:
    """What the model may say: FAQ entries and products found for a message."""

    faqs: tuple[FaqEntry, ...]
    products: tuple[Product, ...]

    def text(self) -> str:
        return prompts.facts_text(
            [prompts.FaqFact(f.id, f.question, f.answer) for f in self.faqs],
            [product_fact(p) for p in self.products])

    def ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.faqs) + tuple(p.sku for p in self.products)


@dataclass(frozen=True)
class _Indexes:
    """What the router searches, built from one generation of the chat content."""

    generation: tuple[int, int]  # of the chat content and of the catalog
    faq_index: Index
    faq_texts: Index
    product_index: Index
    faqs: dict[str, FaqEntry]
    name_words: dict[str, list[str]]


def _indexes(content: ChatContent, catalog: Catalog) -> _Indexes:
    stop = content.words["stopwords"]
    return _Indexes(
        (content.generation, catalog.generation),
        # questions and keywords only: answers name products and would match their questions
        Index([(f.id, " ".join((f.question, *f.keywords))) for f in content.faqs], stop),
        Index([(f.id, " ".join((f.question, f.answer, *f.keywords)))
               for f in content.faqs], stop),  # what grounding may draw on
        Index([(p.sku, _product_text(p)) for p in catalog.products.values()], stop),
        {f.id: f for f in content.faqs},
        {p.sku: [w for w in tokens(p.name, frozenset(stop)) if len(w) >= 2]
         for p in catalog.products.values()})


class ChatRouter:
    """Implements guidebot.chat.decision.ReplyRouter for one content library and catalog.
    `content` is the shared chat content in force: the indexes follow a reload of it."""

    def __init__(self, content: ChatContent, library: Library, catalog: Catalog,
                 llm: LlmClient, *, canary: str | None = None) -> None:
        self.content, self.library, self.catalog, self.llm = content, library, catalog, llm
        self.canary = canary or f"GB-{secrets.token_hex(8)}"
        self.rule_lines = prompts.rule_lines()
        self._built = _indexes(content, catalog)

    @property
    def indexes(self) -> _Indexes:
        """The indexes of the chat content and catalog in force (built again after a reload
        swapped either; no await in between, so a message is routed on one generation's
        indexes)."""
        if self._built.generation != (self.content.generation, self.catalog.generation):
            self._built = _indexes(self.content, self.catalog)
        return self._built

    @property
    def faq_index(self) -> Index:
        return self.indexes.faq_index

    @property
    def faq_texts(self) -> Index:
        return self.indexes.faq_texts

    @property
    def product_index(self) -> Index:
        return self.indexes.product_index

    async def decide(self, inbound: Inbound) -> Decision:
        text = inbound.text.strip()
        if not text:
            return Decision(Route.IGNORED, "empty")
        words = self.content.words
        if found(words["opt_out"], text) is not None:
            return Decision(Route.OPT_OUT, "opt_out_word",
                            text=self.content.text("opt_out_confirm"))
        if inbound.customer.opted_out and found(words["opt_in"], text) is not None:
            return Decision(Route.OPT_IN, "opt_in_word",
                            text=self.content.text("opt_in_confirm"))
        if found(words["handoff"], text) is not None:
            return self._handoff(inbound, "asked_for_person", "why_asked")
        if found(words["complaint"], text) is not None:
            return self._handoff(inbound, "complaint", "why_complaint")
        # a named product's price or stock comes before the FAQ (运费多少钱 names none);
        # short-message replies (greetings, thanks) only when neither answers (你好，口红多少钱)
        injected = found(words["injection"], text) is not None
        return (self.reply(inbound) or self.catalog_answer(inbound) or self.faq(text)
                or self.reply(inbound, short=True)
                or await self._model(inbound, injected=injected))

    # --- the deterministic paths ---------------------------------------------------------

    def reply(self, inbound: Inbound, *, short: bool = False) -> Decision | None:
        """The first keyword reply that matches: rules without `max_chars`, or with `short`
        those with it, for a message no longer than that."""
        text = fold(inbound.text)
        for rule in self.content.replies:
            if bool(rule.max_chars) != short or (short and len(text) > rule.max_chars):
                continue
            if found(rule.keywords, text) is None:
                continue
            message = self.library.messages.get(rule.message)
            if message is None or not message.text:
                log.warning("reply %s names message %s, which is gone", rule.id, rule.message)
                continue
            body = render(message.text, {"customer": {"name": inbound.customer.name}})
            return Decision(Route.REPLY, f"reply:{rule.id}", text=body, facts=(rule.id,))
        return None

    def faq_match(self, text: str) -> FaqEntry | None:
        """The entry whose keywords the message names most, else a confident BM25 match."""
        folded = fold(text)
        keyed = [(sum(len(k) for k in f.keywords if folded_word(k) in folded), i)
                 for i, f in enumerate(self.content.faqs)]
        best = max(keyed, default=(0, 0))
        if best[0] > 0:
            return self.content.faqs[best[1]]
        hits = self.faq_index.search(text, k=1)
        if hits and hits[0].coverage >= FAQ_COVERAGE and hits[0].shared >= FAQ_MIN_SHARED:
            return self.indexes.faqs[hits[0].id]
        return None

    def faq(self, text: str) -> Decision | None:
        entry = self.faq_match(text)
        if entry is None:
            return None
        return Decision(Route.FAQ, f"faq:{entry.id}", text=entry.answer, facts=(entry.id,))

    def mentioned(self, inbound: Inbound) -> list[Product]:
        """Products the message names (by sku or name words), else the one the customer
        looked at last; the best-named first."""
        folded, name_words = fold(inbound.text), self.indexes.name_words
        scored = []
        for product in self.catalog.products.values():
            score = (100 if product.sku.lower() in folded else 0) + sum(
                len(w) for w in name_words[product.sku] if w in folded)
            if score:
                scored.append((score, product))
        if scored:
            top = max(s for s, _ in scored)
            return [p for s, p in scored if s == top]
        recent = [self.catalog.get(sku) for sku in reversed(inbound.customer.recent_skus)]
        return [p for p in recent if p is not None][:1]

    def catalog_answer(self, inbound: Inbound, *, info: bool = False) -> Decision | None:
        """Price or stock of the one product the message names; with `info`, its description
        when nothing else was asked (the fallback when no model answers)."""
        products = self.mentioned(inbound)
        if len(products) != 1:
            return None
        p, words = products[0], self.content.words
        price = yuan(p.price_fen)
        if found(words["stock"], inbound.text) is not None:
            if p.stock is None:
                return None
            if p.stock == 0:
                return self._catalog(p, "stock", self.content.text(
                    "catalog_sold_out", name=p.name, price=price))
            return self._catalog(p, "stock", self.content.text(
                "catalog_stock", name=p.name, price=price, stock=p.stock))
        if found(words["price"], inbound.text) is not None:
            stock = self.content.text("stock_part") if p.stock else ""
            return self._catalog(p, "price", self.content.text(
                "catalog_price", name=p.name, price=price, stock=stock))
        if info:
            return self._catalog(p, "info", self.content.text(
                "catalog_info", name=p.name, price=price, description=p.description))
        return None

    def _catalog(self, p: Product, what: str, text: str) -> Decision:
        return Decision(Route.CATALOG, f"catalog:{p.sku}:{what}", text=text, card_sku=p.sku,
                        facts=(p.sku,))

    # --- the model -------------------------------------------------------------------------

    def grounding(self, inbound: Inbound) -> Grounding:
        named = self.mentioned(inbound)
        indexes = self.indexes
        faqs = [indexes.faqs[h.id]
                for h in indexes.faq_texts.search(inbound.text, GROUNDING_HITS)]
        products = named or [self.catalog.products[h.id] for h in
                             indexes.product_index.search(inbound.text, GROUNDING_HITS)]
        return Grounding(tuple(faqs), tuple(products[:GROUNDING_HITS]))

    async def _model(self, inbound: Inbound, *, injected: bool) -> Decision:
        if injected:
            return self._fallback(inbound, "injection", "why_injection")
        if not self.llm.enabled:
            return self._fallback(inbound, "llm_off", "why_no_answer")
        ground = self.grounding(inbound)
        facts, asked_on = ground.text(), self.indexes.generation
        try:
            answer = await self.llm.complete(
                prompts.grounded_reply(canary=self.canary, facts=facts, question=inbound.text),
                tenant=inbound.tenant, purpose="reply")
        except LlmUnavailable:
            return self._fallback(inbound, "llm_unavailable", "why_no_answer")
        if self.indexes.generation != asked_on:
            # a reload swapped the catalog or the chat content while the model answered: the
            # answer is checked against the facts in force now, so an old price is not sent
            ground = self.grounding(inbound)
            facts = ground.text()
        if prompts.declined(answer.text):
            return self._fallback(inbound, "llm_declined", "why_no_answer")
        problem = grounding.problem(answer.text, question=inbound.text, grounding=facts,
                                    canary=self.canary, rule_lines=self.rule_lines)
        if problem is not None:
            log.warning("llm answer not sent tenant=%s msgid=%s problem=%s", inbound.tenant,
                        inbound.msgid, problem)
            return self._fallback(inbound, f"llm_{problem}", "why_ungrounded")
        card = ground.products[0].sku if len(self.mentioned(inbound)) == 1 else None
        return Decision(Route.LLM, "llm:grounded", text=answer.text, card_sku=card,
                        facts=ground.ids())

    def _fallback(self, inbound: Inbound, reason: str, why: str) -> Decision:
        """No model answer: the named product's catalog entry, else a person."""
        decision = self.catalog_answer(inbound, info=True)
        if decision is not None:
            return Decision(decision.route, f"{decision.reason} after {reason}",
                            text=decision.text, card_sku=decision.card_sku, facts=decision.facts)
        return self._handoff(inbound, reason, why)

    def _handoff(self, inbound: Inbound, reason: str, why: str) -> Decision:
        excerpt = re.sub(r"\s+", " ", inbound.text).strip()
        if len(excerpt) > EXCERPT_CHARS:
            excerpt = excerpt[:EXCERPT_CHARS] + "…"
        summary = self.content.text(
            "handoff_summary", customer=inbound.customer.name or inbound.customer.external_userid,
            why=self.content.text(why), excerpt=excerpt)
        return Decision(Route.HANDOFF, f"handoff:{reason}", summary=summary)


def _product_text(p: Product) -> str:
    return " ".join((p.name, p.sku, p.description, *(v for _, v in p.attributes)))


def load_router(root: Path, llm: LlmSettings, *, library: Library | None = None,
                catalog: Catalog | None = None, meter: TokenMeter | None = None) -> ChatRouter:
    """The router over a content library (loaded here unless given); raises ContentInvalid.
    `meter` records the model's tokens (usage metering)."""
    library = library or load_library(root)
    return ChatRouter(load_chat_content(root, set(library.messages)), library,
                      catalog or load_catalog(root), LlmClient(llm, meter=meter))

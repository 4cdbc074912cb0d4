"""Retrieval that works on Chinese: jieba words, BM25 ranking, and a coverage score (how much
of the question a document speaks to) to decide whether a match is confident."""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import jieba
from rank_bm25 import BM25Okapi

from guidebot.chat.grounding import normalise

jieba.setLogLevel(logging.WARNING)
_WORD = re.compile(r"[\w\u4e00-\u9fff]")
_lock = threading.Lock()


def tokens(text: str, stopwords: frozenset[str] = frozenset()) -> list[str]:
    """jieba search-mode words, lower-cased, without punctuation and stop words."""
    return [w for w in _words(text) if w not in stopwords]


@functools.lru_cache(maxsize=1024)
def _words(text: str) -> tuple[str, ...]:
    """A message is searched in several indexes: it is cut once."""
    with _lock:  # jieba builds its dictionary lazily on first use
        words = jieba.lcut_for_search(normalise(text).lower())
    return tuple(w for w in (w.strip() for w in words) if w and _WORD.search(w))


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    coverage: float  # share of the question's distinct words found in the document
    shared: int      # how many of them


class Index:
    """BM25 over (id, text) documents; built once per content load."""

    def __init__(self, docs: Sequence[tuple[str, str]], stopwords: Iterable[str] = ()) -> None:
        self.stopwords = frozenset(stopwords)
        self.ids = [doc_id for doc_id, _ in docs]
        self.words = [tokens(text, self.stopwords) for _, text in docs]
        self._bm25 = BM25Okapi([w or ["\x00"] for w in self.words]) if docs else None

    def search(self, query: str, k: int = 3) -> list[Hit]:
        """Documents sharing at least one word with the query, best first."""
        asked = tokens(query, self.stopwords)
        if self._bm25 is None or not asked:
            return []
        distinct = set(asked)
        scores = self._bm25.get_scores(asked)
        hits = []
        for i, doc_id in enumerate(self.ids):
            shared = distinct & set(self.words[i])
            if shared:
                hits.append(Hit(doc_id, float(scores[i]), len(shared) / len(distinct),
                                len(shared)))
        hits.sort(key=lambda h: (h.coverage, h.score), reverse=True)
        return hits[:k]

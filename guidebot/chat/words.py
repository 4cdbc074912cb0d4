"""Word-list matching for customer messages (the lists live in content_library/chat)."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

_LATIN = re.compile(r"^[0-9a-z ]+$")
_EDGES = re.compile(r"^[\s\W_]+|[\s\W_]+$")
SHORT = 2  # a Latin word this short (TD, T) counts only as the whole message


def fold(text: str) -> str:
    """NFKC, lower case, runs of spaces as one."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().lower()


@functools.lru_cache(maxsize=8192)
def folded_word(word: str) -> str:
    """`fold` of a list's word (the lists are fixed: each is folded once)."""
    return fold(word)


def found(words: Iterable[str], text: str) -> str | None:
    """The first word of the list in the message, or None."""
    folded = fold(text)
    bare = _EDGES.sub("", folded)
    for word in words:
        w = folded_word(word)
        if _LATIN.fullmatch(w):
            if len(w) <= SHORT:
                if bare == w:
                    return word
            elif re.search(rf"(?<![0-9a-z]){re.escape(w)}(?![0-9a-z])", folded):
                return word
        elif w in folded:
            return word
    return None

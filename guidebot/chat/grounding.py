"""Is a model's answer safe to send? Numbers only from the grounding, no leaked prompt, no
junk. Pure functions."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
# A Chinese numeral counts as a number when a unit follows it (八折, 三百元, 七天, 两件).
_CN_NUMBER = re.compile(r"([零〇一二两三四五六七八九十百千万]+)"
                        r"(?=[折元块件天个小时日号码周年月%减送])")
_THOUSANDS = re.compile(r"(?<=\d)[,，](?=\d{3}(?!\d))")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CJK = re.compile(r"[\u4e00-\u9fff]")
MAX_ANSWER_CHARS = 400
_JUNK_MARKS = ("```", "<html", "<!doctype", "{\"", "\ufffd", "<|", "|>")


def _chinese_value(numeral: str) -> int:
    if all(ch in _CN_DIGITS for ch in numeral):  # 八五 (折) → 85: digits read one by one
        return int("".join(str(_CN_DIGITS[ch]) for ch in numeral))
    total, section, digit = 0, 0, 0
    for ch in numeral:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch == "万":
            total += ((section + digit) or 1) * 10000
            section, digit = 0, 0
        else:
            section += (digit or 1) * _CN_UNITS[ch]
            digit = 0
    return total + section + digit


def _canonical(raw: str) -> str:
    try:
        value = Decimal(raw).normalize()
    except InvalidOperation:  # pragma: no cover - the pattern only matches numbers
        return raw
    return format(value, "f")


def normalise(text: str) -> str:
    """Full-width forms folded, thousands separators dropped, Chinese numerals as digits."""
    text = unicodedata.normalize("NFKC", text)
    text = _THOUSANDS.sub("", text)
    return _CN_NUMBER.sub(lambda m: str(_chinese_value(m.group(1))), text)


def numbers(text: str) -> set[str]:
    """Every number in `text`, canonical (¥299.00, 299元 and 二百九十九元 are all "299")."""
    return {_canonical(n) for n in _NUMBER.findall(normalise(text))}


def ungrounded_numbers(answer: str, grounding: str) -> set[str]:
    return numbers(answer) - numbers(grounding)


def leaked(answer: str, canary: str, rule_lines: Iterable[str]) -> bool:
    """The canary, or any clause of the prompt's fixed rules, in the answer."""
    folded = unicodedata.normalize("NFKC", answer)
    return canary in folded or any(unicodedata.normalize("NFKC", line) in folded
                                   for line in rule_lines)


def junk(answer: str, question: str) -> bool:
    """Empty, too long, markup or model tokens, or not in the customer's language."""
    text = answer.strip()
    if not text or len(text) > MAX_ANSWER_CHARS:
        return True
    lowered = text.lower()
    if any(mark in lowered for mark in _JUNK_MARKS):
        return True
    if any(unicodedata.category(ch) in ("Cc", "Co", "Cs") and ch not in "\n\t" for ch in text):
        return True
    return bool(_CJK.search(question)) and not _CJK.search(text)


def problem(answer: str, *, question: str, grounding: str, canary: str,
            rule_lines: Iterable[str]) -> str | None:
    """Why the answer must not be sent (a reason, never text), or None when it may be."""
    if leaked(answer, canary, rule_lines):
        return "leak"
    if junk(answer, question):
        return "junk"
    if ungrounded_numbers(answer, grounding):
        return "ungrounded_number"
    return None

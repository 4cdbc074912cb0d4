"""Safe XML reading: no DTDs, no entity expansion (XXE and billion-laughs proof)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring


class UnsafeOrInvalidXml(ValueError):
    """The bytes are not well-formed XML, or declare a DTD or entities."""


def parse_xml(data: bytes | str) -> Element:
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise UnsafeOrInvalidXml(type(exc).__name__) from None


def flatten(root: Element) -> dict[str, str | list[str]]:
    """Children of the root by tag: text for leaves, a list of texts for list elements."""
    out: dict[str, str | list[str]] = {}
    for child in root:
        items = list(child)
        if items:
            out[child.tag] = [(item.text or "").strip() for item in items]
        else:
            out[child.tag] = (child.text or "").strip()
    return out

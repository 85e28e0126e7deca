"""XML helpers shared by the ADARA packets that carry XML (GEOMETRY, RUN_INFO, DEVICE_DESC)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_XML_BYTES = 4 << 20  # the largest XML packet bound (GEOMETRY, packets.PAYLOAD_BOUNDS)


def parse_xml(text: str, limit: int = MAX_XML_BYTES) -> ET.Element:
    """The root element of an XML text from the stream (surrounding whitespace ignored).

    Raises ET.ParseError, and nothing else, for anything it will not read: malformed XML, entity declarations
    and external references (a stream must not make us expand or fetch anything), an unknown or unsupported
    encoding in the declaration, or a text over `limit` bytes (refused before parsing; callers pass their
    packet type's bound)."""
    if len(text) > limit:  # characters: a cheap first look; the byte count is checked below
        raise ET.ParseError(f"refused: XML of {len(text)} characters, over the {limit}-byte bound")
    data = text.strip().encode("utf-8", "replace")
    if len(data) > limit:
        raise ET.ParseError(f"refused: XML of {len(data)} bytes, over the {limit}-byte bound")
    try:
        return fromstring(data)
    except DefusedXmlException as exc:
        raise ET.ParseError(f"refused: {exc}") from exc
    except (LookupError, ValueError, UnicodeError) as exc:  # e.g. encoding="bogus" in the declaration
        raise ET.ParseError(f"unreadable: {exc}") from exc


def local_tag(el: ET.Element) -> str:
    """An element's tag without its namespace."""
    tag = el.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""

"""XML helpers shared by the ADARA packets that carry XML (GEOMETRY, RUN_INFO, DEVICE_DESC)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring


def parse_xml(text: str) -> ET.Element:
    """The root element of an XML text from the stream (surrounding whitespace ignored). Raises ET.ParseError,
    also for entity declarations and external references: a stream must not make us expand or fetch anything."""
    try:
        return fromstring(text.strip().encode())
    except DefusedXmlException as exc:
        raise ET.ParseError(f"refused: {exc}") from exc


def local_tag(el: ET.Element) -> str:
    """An element's tag without its namespace."""
    return el.tag.rsplit("}", 1)[-1]

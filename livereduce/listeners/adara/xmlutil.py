"""XML helpers shared by the ADARA packets that carry XML (GEOMETRY, RUN_INFO, DEVICE_DESC)."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def parse_xml(text: str) -> ET.Element:
    """The root element of an XML text (surrounding whitespace ignored); raises ET.ParseError."""
    return ET.fromstring(text.strip().encode())


def local_tag(el: ET.Element) -> str:
    """An element's tag without its namespace."""
    return el.tag.rsplit("}", 1)[-1]

"""Instrument geometry from Mantid instrument definition files (IDF XML): see docs/geometry.md."""

from livereduce.instrument.idf import MAX_PIXELS
from livereduce.instrument.load import parse_idf, read_idf
from livereduce.instrument.model import InstrumentGeometry, ReferenceFrame

__all__ = ["MAX_PIXELS", "InstrumentGeometry", "ReferenceFrame", "parse_idf", "read_idf"]

"""Reading IDF text or files into an InstrumentGeometry, with an in-process cache keyed by the text's hash."""

from __future__ import annotations

import copyreg
import hashlib
import threading
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

from livereduce.instrument.idf import MAX_PIXELS, read_root
from livereduce.instrument.model import InstrumentGeometry
from livereduce.listeners.adara.xmlutil import parse_xml

MAX_IDF_BYTES = 64 << 20
CACHE_SIZE = 8

_cache: OrderedDict[tuple, InstrumentGeometry] = OrderedDict()
_cache_lock = threading.Lock()


def parse_idf(
    text: str,
    *,
    logs: Mapping[str, float] | None = None,
    max_pixels: int = MAX_PIXELS,
    limit: int = MAX_IDF_BYTES,
    cache: bool = True,
    parameters: str | None = None,
) -> InstrumentGeometry:
    """The geometry an IDF's text defines. Results are cached by the text's SHA-256 (the last CACHE_SIZE
    texts), so the same IDF arriving again (each run's GEOMETRY packet) costs a hash; `cache=False` reads it
    afresh (benchmarks). `logs` (log name → value, e.g. SNAP's det_arc1) feed the <logfile> parameters that
    place components; without them such parameters are skipped. ValueError, naming the element, for anything
    unreadable, unsupported, inconsistent or over `max_pixels` / `limit` bytes."""
    # the bound before the cache: a smaller limit must still refuse a text cached under a larger one
    if len(text) > limit:
        raise ValueError(f"IDF: {len(text)} characters, over the {limit}-byte bound")
    logs = {str(k): float(v) for k, v in (logs or {}).items()}
    key = (
        hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
        max_pixels,
        tuple(sorted(logs.items())),
        hashlib.sha256(parameters.encode("utf-8", "surrogatepass")).hexdigest() if parameters else "",
    )
    with _cache_lock:
        hit = _cache.get(key) if cache else None
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    try:
        extra = parse_xml(parameters, limit) if parameters else None
        geometry = read_root(parse_xml(text, limit), max_pixels, logs, extra)
    except ET.ParseError as exc:
        raise ValueError(f"IDF: not readable XML: {exc}") from None
    except RecursionError:
        raise ValueError("IDF: nested too deep") from None
    except ValueError as exc:
        raise ValueError(f"IDF {exc}" if str(exc).startswith("<") else f"IDF: {exc}") from None
    object.__setattr__(geometry, "_source", (text, max_pixels, tuple(sorted(logs.items())), parameters))
    with _cache_lock:
        _cache[key] = geometry
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return geometry


def read_idf(
    path: str | Path, *, logs: Mapping[str, float] | None = None, max_pixels: int = MAX_PIXELS
) -> InstrumentGeometry:
    """parse_idf of a file, with the instrument's parameter file beside it when there is one (Mantid's
    `<NAME>_Parameters.xml`, NAME the part of the file name before `_Definition`: its values replace the
    definition's). ValueError (naming the file) if either cannot be read or is too large."""
    p = Path(path)
    text = _read(p)
    found = parameter_file(p)
    parameters = _read(found) if found is not None else None
    try:
        return parse_idf(text, logs=logs, max_pixels=max_pixels, parameters=parameters)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None


def parameter_file(idf: Path) -> Path | None:
    """`<NAME>_Parameters.xml` beside `idf` (NAME_Definition….xml), or None."""
    name = idf.name.split("_Definition", 1)[0]
    if name == idf.name:
        return None
    candidate = idf.with_name(f"{name}_Parameters.xml")
    return candidate if candidate.is_file() else None


def _read(p: Path) -> str:
    try:
        size = p.stat().st_size
        if size > MAX_IDF_BYTES:
            raise ValueError(f"{p}: {size} bytes, over the {MAX_IDF_BYTES}-byte bound")
        return p.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise ValueError(f"{p}: {exc.strerror or exc}") from None


def _from_text(text: str, max_pixels: int, logs: tuple, parameters: str | None = None) -> InstrumentGeometry:
    limit = max(MAX_IDF_BYTES, len(text), len(parameters or ""))
    return parse_idf(text, logs=dict(logs), max_pixels=max_pixels, limit=limit, parameters=parameters)


def _reduce(g: InstrumentGeometry):
    """A geometry parse_idf made pickles as its IDF text (tens of kB), not its arrays (tens of MB for 10^6
    pixels): the receiving process parses it once and then finds it in its cache, chunk after chunk."""
    source = g.__dict__.get("_source")
    return (_from_text, source) if source is not None else g.__reduce__()


copyreg.pickle(InstrumentGeometry, _reduce)

"""Slow controls: ADARA device descriptors (which process variables a device logs, with type and unit)
and variable-value packets (VAR_VALUE_*, MULT_VAR_VALUE_*), decoded into typed run-log updates.

Stateless: the listener keeps the (device id, variable id) → `ProcessVariable` table and applies updates to
its run under its lock. Nothing here takes a lock or touches a run; these functions may log (debug lines for
skipped variables), so the listener calls them outside its lock. An inconsistent packet (unreadable or
oversized descriptor XML, a value whose type disagrees with its descriptor) raises `PacketError`: the
listener drops and counts that one packet.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from livereduce.listeners.adara import packets as P
from livereduce.listeners.adara.xmlutil import local_tag, parse_xml

log = logging.getLogger("livereduce.listener.adara")


@dataclass(frozen=True)
class ProcessVariable:
    device_id: int
    variable_id: int
    name: str  # the run log's name
    kind: str  # the log's value type: "float", "int", "str" or "array"
    unit: str

    @property
    def key(self) -> tuple[int, int]:
        """What a variable packet names it by: (device id, variable id)."""
        return self.device_id, self.variable_id


def describe(desc: P.DeviceDescriptorPkt) -> list[ProcessVariable]:
    """The loggable process variables a device descriptor declares, in order; PacketError for unreadable XML
    (malformed, entities, unknown encoding, over the DEVICE_DESC bound)."""
    try:
        root = parse_xml(desc.xml, P.max_payload(P.Type.DEVICE_DESC))
    except ET.ParseError as exc:
        raise P.PacketError(f"unreadable device descriptor XML for device {desc.device_id}: {exc}") from None
    out = []
    for pv in (el for el in root.iter() if local_tag(el) == "process_variable"):
        fields = {local_tag(c): (c.text or "").strip() for c in pv}
        kind = pv_kind(fields.get("pv_type", ""))
        if kind is None or not fields.get("pv_name") or not fields.get("pv_id", "").isdecimal():
            log.debug("device %d: skipping process variable %s", desc.device_id, fields)
            continue
        out.append(
            ProcessVariable(
                desc.device_id, int(fields["pv_id"]), fields["pv_name"], kind, fields.get("pv_units", "")
            )
        )
    return out


def pv_kind(pv_type: str) -> str | None:
    """The log value type for a descriptor's pv_type, or None for types that are not logged."""
    t = pv_type.lower()
    if "array" in t:
        return "array"
    if t in ("double", "float"):
        return "float"
    if t in ("integer", "unsigned", "unsigned integer", "int") or t.startswith("enum_"):
        return "int"
    return "str" if t == "string" else None


# The value layouts (packet codecs) each log kind accepts; any other is a value whose type disagrees with its
# descriptor: the packet is bad.
ACCEPTS = {
    "float": (P.U32, P.F64),
    "int": (P.U32,),
    "str": (P.STR,),
    "array": (P.U32_ARRAY, P.F64_ARRAY),
}


def log_values(
    pkt: P.VariablePkt | P.MultVariablePkt, time_ns: int, pv: ProcessVariable
) -> tuple[np.ndarray, np.ndarray] | None:
    """(times in ns since the Unix epoch, values) of a variable packet sent at `time_ns`, typed for `pv`'s
    log; None when the packet carries no value. PacketError when its value type disagrees with the
    descriptor's (a string for a double log, an array for an integer one...)."""
    if not any(pkt.CODEC is codec for codec in ACCEPTS[pv.kind]):
        raise P.PacketError(
            f"{type(pkt).__name__} value for {pv.kind} log {pv.name!r} (device {pv.device_id}, "
            f"variable {pv.variable_id}): its type disagrees with the descriptor"
        )
    if isinstance(pkt, P.MultVariablePkt):
        times, values = time_ns + np.asarray(pkt.tofs, np.int64), list(pkt.values)
    else:
        times, values = np.array([time_ns]), [pkt.value]
    if not values:
        return None
    try:
        if pv.kind in ("str", "array"):
            array = np.empty(len(values), object)
            array[:] = [str(v) for v in values] if pv.kind == "str" else [np.asarray(v) for v in values]
        else:
            array = np.asarray(values, np.float64 if pv.kind == "float" else np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise P.PacketError(f"value {values!r:.80} does not fit {pv.kind} log {pv.name!r}: {exc}") from None
    return times, array

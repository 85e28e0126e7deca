"""Synthetic runs over a real instrument (`livereduce fake-adara --idf FILE`): the IDF's own text in each
run's GEOMETRY packet, as a real SMS sends it, and events over that IDF's detector ids.

Everything else (pulses, pool, monitors, logs, pauses) is SyntheticRuns'; only the pixel ids and the geometry
packet differ, so the pool still costs nothing per pulse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from livereduce.instrument import read_idf
from livereduce.listeners.adara import packets as P
from livereduce.servers.adara_synthetic import PooledPacket, SyntheticRuns, frame, packet_head


def idf_source(path: str | Path) -> tuple[str, str, np.ndarray]:
    """(the IDF's text, its instrument name, its sorted detector ids); ValueError naming the file if it cannot
    be read, is not an IDF the reader accepts, or is over the GEOMETRY packet's bound."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    geometry = read_idf(path)
    bound = P.max_payload(P.Type.GEOMETRY) - 8  # the packet's length word and padding
    if len(text.encode()) > bound:
        raise ValueError(f"{path}: {len(text.encode())} bytes, over the GEOMETRY packet's {bound}")
    if not geometry.n_pixels:
        raise ValueError(f"{path}: defines no detectors")
    return text, geometry.name, np.asarray(geometry.det_ids)


@dataclass
class IdfRuns(SyntheticRuns):
    idf_text: str = ""
    det_ids: np.ndarray = field(default_factory=lambda: np.arange(1024))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.det_ids = np.asarray(self.det_ids, np.int64)
        if self.det_ids.size == 0 or self.det_ids.min() < 0 or self.det_ids.max() >= 1 << 31:
            raise ValueError("detector ids must be 0 .. 2^31 - 1 to go in an event's pixel word")
        self.pixels = int(self.det_ids.size)  # SyntheticRuns draws pixel indices 0..pixels-1: mapped below

    def run(self, run: int, t0: int, seconds: float) -> Iterator[tuple[int, bytes | PooledPacket]]:
        geometry_sent = False
        for t, data in super().run(run, t0, seconds):
            if not geometry_sent and isinstance(data, bytes):
                if P.HEADER.unpack_from(packet_head(data))[1] >> 8 == P.Type.GEOMETRY:
                    data, geometry_sent = frame(P.GeometryPkt(self.idf_text), t), True
            yield t, data

    def _events(self, pulse: int) -> P.BankedEventPkt:
        """SyntheticRuns' pulse with each pixel index i replaced by the i-th detector id (sorted, so banks stay
        sorted); error-bank events keep their flagged words."""
        packet = super()._events(pulse)
        ids = self.det_ids.astype(np.uint32)
        for source in packet.sources:
            source.banks = [
                b if b.bank_id in P.ERROR_BANKS else P.EventBank(b.bank_id, b.tof, ids[b.pixel])
                for b in source.banks
            ]
        return packet

"""Synthetic runs over a real instrument (`livereduce fake-adara --idf FILE`): the IDF's own text in each
run's GEOMETRY packet, as a real SMS sends it, and events over that IDF's detector ids.

Everything else (pulses, pool, monitors, logs, pauses) is SyntheticRuns'; only the pixel ids and the geometry
packet differ, so the pool still costs nothing per pulse.

With a powder sample (`--powder silicon`), each event's time of flight follows the sample's Bragg peaks at its
pixel (livereduce.servers.powder_sample): TOF = DIFC·d with the pixel's DIFC from the IDF geometry, so
AlignAndFocusPowder puts the peaks back at the sample's d. Each run also sends the choppers' settings as PVs
(`SpeedRequest1` = 60 Hz, `LambdaRequest` = the band's centre), the logs PDDetermineCharacterizations reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from livereduce.instrument import parse_idf, read_idf
from livereduce.listeners.adara import packets as P
from livereduce.servers.adara_synthetic import PooledPacket, SyntheticRuns, frame, packet_head
from livereduce.servers.powder_sample import PowderSample

CHOPPER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<device xmlns="http://public.sns.gov/schema/device.xsd"><device_name>choppers</device_name><process_variables>
<process_variable><pv_name>SpeedRequest1</pv_name><pv_id>1</pv_id><pv_type>double</pv_type><pv_units>Hz</pv_units>
</process_variable>
<process_variable><pv_name>LambdaRequest</pv_name><pv_id>2</pv_id><pv_type>double</pv_type>
<pv_units>Angstrom</pv_units></process_variable>
</process_variables></device>"""
CHOPPER_DEVICE = 2  # the synthetic runs' sample environment is device 1
EVENT_BLOCK = 1 << 16  # events drawn at once: a block costs [events × peaks] floats


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
    powder: str | None = None  # a sample of powder_sample.LATTICE: events follow its Bragg peaks

    def __post_init__(self) -> None:
        super().__post_init__()
        self.det_ids = np.asarray(self.det_ids, np.int64)
        if self.det_ids.size == 0 or self.det_ids.min() < 0 or self.det_ids.max() >= 1 << 31:
            raise ValueError("detector ids must be 0 .. 2^31 - 1 to go in an event's pixel word")
        self.pixels = int(self.det_ids.size)  # SyntheticRuns draws pixel indices 0..pixels-1: mapped below
        self.sample = PowderSample(self.powder) if self.powder else None
        if self.sample is not None:
            from livereduce.algorithms.diffcal import difc_from_geometry

            g = parse_idf(self.idf_text)  # the reader's cache: the same text FakeSMS read
            k = g.index_of(self.det_ids)
            self._difc = difc_from_geometry(g.l1, g.l2[k], g.two_theta[k])
            self._sin = np.sin(g.two_theta[k] / 2)

    def run(self, run: int, t0: int, seconds: float) -> Iterator[tuple[int, bytes | PooledPacket]]:
        geometry_sent = False
        for t, data in super().run(run, t0, seconds):
            if not geometry_sent and isinstance(data, bytes):
                if P.HEADER.unpack_from(packet_head(data))[1] >> 8 == P.Type.GEOMETRY:
                    data, geometry_sent = frame(P.GeometryPkt(self.idf_text), t), True
                    if self.sample is not None:
                        yield t, data
                        yield from self._chopper_pvs(t, self.sample)
                        continue
            yield t, data

    def _chopper_pvs(self, t: int, sample: PowderSample) -> Iterator[tuple[int, bytes]]:
        centre = 0.5 * (sample.band[0] + sample.band[1])
        yield t, frame(P.DeviceDescriptorPkt(CHOPPER_DEVICE, CHOPPER_XML), t)
        yield t, frame(P.VariableDoublePkt(CHOPPER_DEVICE, 1, value=60.0), t)
        yield t, frame(P.VariableDoublePkt(CHOPPER_DEVICE, 2, value=centre), t)

    def _tof(self, pixel: np.ndarray, sample: PowderSample) -> tuple[np.ndarray, np.ndarray]:
        """(TOF in 100 ns units, kept) of events on these pixel indices: the sample's peaks at each pixel's
        DIFC; events whose pixel sees no peak are not kept."""
        d = np.empty(pixel.size)
        for start in range(0, pixel.size, EVENT_BLOCK):
            part = pixel[start : start + EVENT_BLOCK]
            d[start : start + part.size] = sample.draw_d(self.rng, self._sin[part])
        tof_us = self._difc[pixel] * d
        keep = np.isfinite(tof_us) & (tof_us > 0) & (tof_us * 10 < 2**32 - 1)
        return np.rint(np.where(keep, tof_us, 0) * 10).astype(np.uint32), keep

    def _events(self, pulse: int) -> P.BankedEventPkt:
        """SyntheticRuns' pulse with each pixel index i replaced by the i-th detector id (sorted, so banks stay
        sorted); error-bank events keep their flagged words."""
        packet = super()._events(pulse)
        ids = self.det_ids.astype(np.uint32)
        for source in packet.sources:
            banks = []
            for b in source.banks:
                if b.bank_id in P.ERROR_BANKS:
                    banks.append(b)
                elif self.sample is None:
                    banks.append(P.EventBank(b.bank_id, b.tof, ids[b.pixel]))
                else:
                    tof, keep = self._tof(b.pixel, self.sample)
                    banks.append(P.EventBank(b.bank_id, tof[keep], ids[b.pixel[keep]]))
            source.banks = banks
        return packet

"""The instrument geometry reaches live workspaces: from a real IDF in the ADARA GEOMETRY packet, and from the
config's `instrument_definition` for listeners that send none."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from conftest import shared_path
from stream_helpers import one_run

from livereduce.algorithms import call
from livereduce.chunks import workspace_from_chunk
from livereduce.instrument import read_idf
from livereduce.instrument.attach import WithInstrument, attach_geometry
from livereduce.listeners.base import Chunk, ChunkEvents
from livereduce.workspace.spectra import Spectra

POWGEN = "instruments/idf/POWGEN_Definition_2018-05-05.xml"

# h/m_n in Å·m/µs (CODATA 2022: h = 6.62607015e-34 J s, m_n = 1.67492750056e-27 kg): λ[Å] = 3956.034 t[µs]/L[m]/1e3
H_OVER_MN = 6.62607015e-34 / 1.67492750056e-27 * 1e4


def _idf(tmp_path, body: str) -> str:
    path = tmp_path / "T_Definition.xml"
    path.write_text(
        '<?xml version="1.0"?><instrument xmlns="http://www.mantidproject.org/IDF/1.0" name="TEST">'
        '<component type="moderator"><location z="-10"/></component><type name="moderator" is="Source"/>'
        '<component type="sample"><location/></component><type name="sample" is="SamplePos"/>'
        f"{body}</instrument>"
    )
    return str(path)


# two pixels: id 1 at (0, 2, 0) (2θ = 90°, φ = 90°), id 2 at (2, 0, 0) (2θ = 90°, φ = 0); L1 = 10 m; one parameter
TWO_PIXELS = (
    '<component type="pixel" idlist="pixels"><location y="2"/><location x="2"/></component>'
    '<type name="pixel" is="detector"/><idlist idname="pixels"><id start="1" end="2"/></idlist>'
    '<component-link name="TEST"><parameter name="tube_pressure"><value val="6.5"/></parameter></component-link>'
)


def test_attach_fills_what_the_listener_did_not_know(tmp_path):
    g = read_idf(_idf(tmp_path, TWO_PIXELS))
    s = Spectra.one_to_one([2, 1, 99])  # id 99 is not in the definition: stays unknown
    attach_geometry(s, g)
    assert s.l1 == 10.0 and s.instrument == "TEST" and s.geometry is g
    assert s.l2[:2] == pytest.approx([2.0, 2.0]) and s.two_theta[:2] == pytest.approx([math.pi / 2] * 2)
    assert s.azimuthal[:2] == pytest.approx([0.0, math.pi / 2])
    assert math.isnan(s.l2[2]) and math.isnan(s.two_theta[2])
    # a listener's own geometry wins: already attached spectra are left alone
    other = Spectra.one_to_one([1], l1=5.0, l2=1.0, two_theta=0.5)
    other.geometry = "theirs"
    assert attach_geometry(other, g).l2[0] == 1.0 and other.geometry == "theirs"


class _Stub:
    buffers_events = True

    def __init__(self):
        self.closed = False

    def extract(self):
        ev = ChunkEvents(
            np.array([1], np.uint32),
            np.array([10_000.0], np.float32),
            np.array([0], np.int64),
            np.array([0], np.int64),
        )
        return Chunk(spectra=Spectra.one_to_one([1, 2]), events=ev)

    def close(self):
        self.closed = True


def test_a_config_idf_gives_workspaces_the_instrument(tmp_path):
    listener = WithInstrument(_Stub(), _idf(tmp_path, TWO_PIXELS))
    ws = workspace_from_chunk(listener.extract())
    inst = ws.getInstrument()
    assert inst.getName() == "TEST" and inst.getNumberParameter("tube_pressure") == [6.5]
    assert ws.spectrumInfo().l2(1) == pytest.approx(2.0) and ws.spectrumInfo().twoTheta(1) == pytest.approx(
        math.pi / 2
    )
    assert inst.getDetector(2).getPos().X() == pytest.approx(2.0)
    # d = λ / (2 sin θ), λ = (h/m_n) t / (L1 + L2): the event at 10000 µs in id 2 (2θ = 90°, L = 12 m)
    d = call("ConvertUnits", ws, Target="dSpacing", StoreInADS=False)
    expected = H_OVER_MN * 10_000.0 / 12.0 / (2 * math.sin(math.pi / 4))
    assert d.events.x[0] == pytest.approx(expected, rel=1e-12)
    listener.close()  # the wrapped listener's own methods pass through
    assert listener._listener.closed


def test_the_live_adara_stream_gives_workspaces_the_full_idf(caplog):
    path = shared_path(POWGEN)
    direct = read_idf(path)
    chunks, _, _ = one_run(idf=path, run_seconds=0.3, seed=3)
    ws = workspace_from_chunk(chunks[-1])
    g = ws.spectra.geometry  # the full definition the packet held, as reading the file gives it
    assert g.name == "PG3" and np.array_equal(g.det_ids, direct.det_ids)
    assert np.array_equal(g.positions, direct.positions)
    k = 1234
    det = int(direct.det_ids[k])
    assert ws.getInstrument().getDetector(det).getPos().Z() == pytest.approx(direct.positions[k][2])
    assert ws.spectrumInfo().l2(k) == pytest.approx(direct.l2[k])
    assert ws.getInstrument().getNumberParameter("no_such_parameter") == []
    assert ws.spectrumInfo().l1() == pytest.approx(60.0)  # POWGEN's moderator is 60 m upstream


def test_a_refused_idf_is_logged_with_its_reason(caplog):
    from livereduce.listeners.adara import packets as P
    from livereduce.listeners.adara.client import AdaraListener

    listener = AdaraListener("127.0.0.1:9")  # never started: only its packet handler is used
    bad = '<instrument name="ODD"><component type="nope"><location/></component></instrument>'
    packet = P.Packet(P.Type.GEOMETRY, 0, 0, 0, P.GeometryPkt(bad).payload(0))
    with caplog.at_level(logging.WARNING, logger="livereduce.listeners.adara.client"):
        listener._on_geometry(packet)
    assert any("refused" in r.message and "nope" in r.message for r in caplog.records), caplog.text


def test_the_geometry_crosses_the_worker_pipe_as_its_text(tmp_path):
    """Chunks go from the daemon to its worker process by pickle: a parsed IDF travels as its text (the worker
    finds it in its cache after the first chunk), a geometry built otherwise as its arrays."""
    import pickle

    from livereduce.instrument.model import InstrumentGeometry

    g = read_idf(_idf(tmp_path, TWO_PIXELS))
    s = Spectra.one_to_one([1, 2])
    attach_geometry(s, g)
    blob = pickle.dumps(s, protocol=5)
    assert pickle.loads(blob).geometry is g and len(blob) < 4000  # noqa: S301 - our own bytes; the text, not arrays
    built = InstrumentGeometry(
        "B",
        g.frame,
        g.source,
        g.sample,
        g.det_ids,
        g.positions,
        g.monitor_ids,
        g.monitor_positions,
        {"B": {"p": 2.0}},
    )
    back = pickle.loads(pickle.dumps(built))  # noqa: S301 - our own bytes
    assert back.number_parameter("p") == [2.0] and np.array_equal(back.two_theta, built.two_theta)

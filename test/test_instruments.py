"""The instrument table (facts from Mantid's Facilities.xml)."""

import pytest

from livereduce import instruments


def test_sns_and_hfir_instruments_stream_adara_on_31415():
    pg3 = instruments.lookup("POWGEN")
    assert (pg3.short_name, pg3.facility, pg3.listener, pg3.address) == (
        "PG3",
        "SNS",
        "adara",
        "bl11a-daq1.sns.gov:31415",
    )
    assert instruments.lookup("pg3") is pg3
    assert instruments.lookup("NOM").name == "NOMAD"
    assert instruments.lookup("CG3").address == "cg3-daq1.ornl.gov:31415"
    assert instruments.script_names(pg3) == ["PG3", "POWGEN"]


def test_test_live_endpoints():
    assert instruments.lookup("ISIS_Histogram").address == "127.0.0.1:56789"
    assert instruments.lookup("ISIS_Event").address == "127.0.0.1:59876"
    assert instruments.lookup("ADARA_FakeEvent").listener == "fake_event"


def test_isis_histogram_and_event_variants():
    assert instruments.lookup("WISH").address == "NDXWISH:6789"
    assert instruments.lookup("MERLIN_EVENT").address == "NDXMERLIN:10000"


def test_unknown_name_lists_closest():
    with pytest.raises(KeyError, match="closest known: NOMAD"):
        instruments.lookup("NOMADD")

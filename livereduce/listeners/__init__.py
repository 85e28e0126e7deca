"""Listeners by name. Each is imported only when chosen, so optional dependencies stay optional."""

from __future__ import annotations

import importlib

LISTENERS = {
    "fake_event": "livereduce.listeners.fake:FakeEventListener",
    "fake_histogram": "livereduce.listeners.fake:FakeHistogramListener",
    "adara": "livereduce.listeners.adara.client:AdaraListener",
    "isis_histogram": "livereduce.listeners.isis_histo:ISISHistogramListener",
    "isis_event": "livereduce.listeners.isis_event:ISISEventListener",
}

# Mantid's listener class names, accepted as aliases so configs written for Mantid keep working.
ALIASES = {
    "FakeEventDataListener": "fake_event",
    "SNSLiveEventDataListener": "adara",
    "ISISHistoDataListener": "isis_histogram",
    "ISISLiveEventDataListener": "isis_event",
}


def canonical(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in LISTENERS:
        raise KeyError(name)
    return name


def make_listener(name: str, address: str = "", **options):
    """Instantiate listener `name` (a key of LISTENERS or a Mantid alias) for `address`."""
    module, _, cls = LISTENERS[canonical(name)].partition(":")
    return getattr(importlib.import_module(module), cls)(address=address, **options)

"""Listeners by kind. Each is imported only when chosen, so optional dependencies stay optional."""

from __future__ import annotations

import importlib

from livereduce.instruments import ListenerKind, listener_kind

IMPLEMENTATIONS = {
    ListenerKind.FAKE_EVENT: "livereduce.listeners.fake:FakeEventListener",
    ListenerKind.FAKE_HISTOGRAM: "livereduce.listeners.fake:FakeHistogramListener",
    ListenerKind.ADARA: "livereduce.listeners.adara.client:AdaraListener",
    ListenerKind.ISIS_HISTOGRAM: "livereduce.listeners.isis_histogram:ISISHistogramListener",
    ListenerKind.ISIS_EVENT: "livereduce.listeners.isis_event:ISISEventListener",
    ListenerKind.KAFKA: "livereduce.listeners.kafka:KafkaListener",
}


def make_listener(name: str, address: str = "", **options):
    """Instantiate the listener of kind `name` (ours or Mantid's class name) for `address`."""
    module, _, cls = IMPLEMENTATIONS[listener_kind(name)].partition(":")
    return getattr(importlib.import_module(module), cls)(address=address, **options)

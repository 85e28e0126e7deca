#!/usr/bin/env python3
"""The guide's fake event server: an ISIS event DAE on 127.0.0.1:59876 (IDC side channel on 59877),
≈ 50,000 events/s over 100 spectra. Ctrl-C stops it. Same as `livereduce fake-isis-event`; --help lists the
options and their defaults."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livereduce.servers.isis_event import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="python test/fake_event_server.py"))

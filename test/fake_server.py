#!/usr/bin/env python3
"""The guide's fake data server: an ISIS histogram DAE with 5 periods, 10 spectra and 100 bins on
127.0.0.1:56789 (every bin of spectrum s in period p holds p·1000 + s). Ctrl-C stops it.
Same as `livereduce fake-isis-histogram`; --help lists the options and their defaults."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livereduce.servers.isis_histogram import main

if __name__ == "__main__":
    sys.exit(
        main(
            ["--periods", "5", "--spectra", "10", "--bins", "100", *sys.argv[1:]],
            prog="python test/fake_server.py",
        )
    )

#!/usr/bin/env python3
"""The seed's entry point: python scripts/livereduce.py [CONFIG] (same as `livereduce run [CONFIG]`)."""

import sys
from pathlib import Path

try:
    from livereduce.cli import main
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from livereduce.cli import main

if __name__ == "__main__":
    sys.exit(main())

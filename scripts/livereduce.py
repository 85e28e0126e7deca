#!/usr/bin/env python3
"""The seed's entry point: python scripts/livereduce.py [CONFIG] (same as `livereduce run [CONFIG]`)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Python puts this script's directory first on the path, where this very file would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
try:
    from livereduce.cli import main
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, str(HERE.parent))
    from livereduce.cli import main

if __name__ == "__main__":
    sys.exit(main())

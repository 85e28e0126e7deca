#!/usr/bin/env python3
"""Run every benchmark (one command). Each reports ratios to a baseline measured in the same run."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    status = 0
    for bench in sorted(HERE.glob("bench_*.py")):
        print(f"== {bench.name}", flush=True)
        status |= subprocess.call([sys.executable, str(bench), *sys.argv[1:]])
    sys.exit(status)

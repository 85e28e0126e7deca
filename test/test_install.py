"""What a fresh, locked-down install needs: every import declared, numba working from a read-only install.

A service user has no writable HOME and cannot write next to the installed sources. numba then refuses to
compile cached kernels ("no locator available") unless livereduce gives it a cache directory. These tests make
that situation for real: a private mount namespace where the package directory and HOME are read-only bind
mounts, and the kernels are compiled and run in a fresh interpreter there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, shared_path

import livereduce

PACKAGE = Path(livereduce.__file__).resolve().parent

# 6 events into edges 0,10,20,30 for 2 spectra; one outside. Expected by hand: [[2,1,0],[0,1,1]], 1 outside.
KERNEL_RUN = """
import numpy as np
from livereduce.workspace import jit
from livereduce.workspace.histogram_kernels import histogram_into
values = np.zeros((2, 3))
outside = histogram_into(values, None, np.array([0, 0, 0, 1, 1, 1], np.uint32),
                         np.array([1.0, 5.0, 15.0, 12.0, 29.0, 31.0], np.float32), np.array([0.0, 10, 20, 30]))
print(values.astype(int).tolist(), outside, jit.CACHING, jit.CACHE_DIR)
"""


def _can_unshare() -> str | None:
    if os.geteuid() != 0:
        return "needs root to make a private mount namespace with read-only bind mounts"
    if shutil.which("unshare") is None:
        return "the unshare command (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if probe.returncode:
        return f"unshare -m is not permitted here: {probe.stderr.strip()}"
    return None


def _run_read_only(tmp_path: Path, *, tmp_writable: bool) -> subprocess.CompletedProcess:
    reason = _can_unshare()
    if reason:
        pytest.skip(reason)
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    mounts = [f"mount --bind -o ro {PACKAGE} {PACKAGE}", f"mount --bind -o ro {home} {home}"]
    if not tmp_writable:  # every place tempfile.gettempdir() may pick (the cwd is HOME)
        mounts += [f"mount --bind -o ro {d} {d}" for d in (tmp, "/tmp", "/var/tmp") if Path(d).is_dir()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1")
    script = " && ".join([*mounts, f'exec {sys.executable} -c "$KERNEL"'])
    env["KERNEL"] = KERNEL_RUN
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env, cwd=home, timeout=120
    )


def test_numba_kernels_compile_and_cache_from_a_read_only_install_without_home(tmp_path):
    done = _run_read_only(tmp_path, tmp_writable=True)
    assert done.returncode == 0, done.stderr
    assert "no locator available" not in done.stderr
    assert done.stdout.startswith("[[2, 1, 0], [0, 1, 1]] 1 True "), done.stdout
    cache_dir = done.stdout.split()[-1]
    assert cache_dir.startswith(str(tmp_path / "tmp")), cache_dir  # HOME was read-only: the temp dir
    assert any(Path(cache_dir).rglob("*.nbi")), "numba wrote no cache index there"


def test_numba_kernels_run_uncached_when_nothing_is_writable(tmp_path):
    done = _run_read_only(tmp_path, tmp_writable=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[[2, 1, 0], [0, 1, 1]] 1 False None"


def test_every_import_is_a_declared_dependency():
    tool = shared_path("tools/check-deps")
    done = subprocess.run(
        [sys.executable, str(tool), str(REPO / "livereduce"), str(REPO / "pyproject.toml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr

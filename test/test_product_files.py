"""Product files are written whole: a reader polling the product path never sees a partial file, a failed
write leaves the previous product, and a symlink at the product path is replaced, not written through."""

from __future__ import annotations

import os
import threading

import h5py
import numpy as np
import pytest

from livereduce.algorithms.product_file import product_file
from livereduce.algorithms.registry import call
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

NSPEC, NBINS = 200, 2000


def workspace(fill: float) -> HistogramWorkspace:
    values = np.full((NSPEC, NBINS), fill)
    return HistogramWorkspace(
        values, values.copy(), np.arange(NBINS + 1, dtype=float), Spectra.one_to_one(np.arange(NSPEC))
    )


def poll_while(write, read, path, rounds: int = 15):
    """Run `write` `rounds` times while another thread reads `path` as fast as it can; return (reads, errors)."""
    stop = threading.Event()
    reads, errors = [0], []

    def reader():
        while not stop.is_set():
            if not path.exists():
                continue
            try:
                read(path)
                reads[0] += 1
            except FileNotFoundError:
                continue  # between two polls the old file was replaced: fine
            except Exception as exc:  # a partial or empty product
                errors.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for k in range(rounds):
            write(k)
    finally:
        stop.set()
        thread.join(10)
    return reads[0], errors


def test_a_reader_never_sees_a_partial_nexus_product(tmp_path, ads):
    path = tmp_path / "live.nxs"

    def read(p):
        with h5py.File(p, "r") as f:
            values = f["mantid_workspace_1/workspace/values"][()]
        assert values.shape == (NSPEC, NBINS), values.shape
        assert np.all(values == values[0, 0])  # one write's data, not a mix

    reads, errors = poll_while(
        lambda k: call("SaveNexus", InputWorkspace=workspace(k), Filename=str(path)), read, path
    )
    assert errors == []
    assert reads > 0
    assert sorted(os.listdir(tmp_path)) == ["live.nxs"]  # no temporary file left behind


def test_a_reader_never_sees_a_partial_ascii_product(tmp_path, ads):
    path = tmp_path / "live.txt"
    expected_lines = 1 + NSPEC * (1 + NBINS)  # header, then per spectrum: number + rows

    def read(p):
        n = len(p.read_text().splitlines())
        assert n == expected_lines, f"{n} lines"

    reads, errors = poll_while(
        lambda k: call("SaveAscii", InputWorkspace=workspace(k), Filename=str(path)), read, path, rounds=3
    )
    assert errors == []
    assert reads > 0


def test_a_failed_write_leaves_the_previous_product_and_no_temporary_file(tmp_path):
    path = tmp_path / "summary.txt"
    path.write_text("previous cycle\n")
    with pytest.raises(RuntimeError), product_file(path) as temp, open(temp, "w") as fh:
        fh.write("half of the new")
        raise RuntimeError("the disk filled up")
    assert path.read_text() == "previous cycle\n"
    assert os.listdir(tmp_path) == ["summary.txt"]


def test_append_extends_the_product_atomically(tmp_path, ads):
    path = tmp_path / "log.txt"
    call("SaveAscii", InputWorkspace=workspace(1), Filename=str(path), WorkspaceIndexMax=0)
    first = path.read_text()
    call("SaveAscii", InputWorkspace=workspace(2), Filename=str(path), WorkspaceIndexMax=0, AppendToFile=True)
    call("SaveAscii", InputWorkspace=workspace(2), Filename=str(tmp_path / "second.txt"), WorkspaceIndexMax=0)
    assert path.read_text() == first + (tmp_path / "second.txt").read_text()


def test_a_symlink_at_the_product_path_is_replaced_not_written_through(tmp_path, ads):
    victim = tmp_path / "victim.conf"
    victim.write_text("must not change\n")
    products = tmp_path / "products"
    products.mkdir()
    (products / "live.txt").symlink_to(victim)
    call("SaveAscii", InputWorkspace=workspace(1), Filename=str(products / "live.txt"), WorkspaceIndexMax=0)
    assert victim.read_text() == "must not change\n"
    assert not (products / "live.txt").is_symlink()


def test_products_get_the_usual_file_mode(tmp_path, ads):
    old = os.umask(0o022)
    try:
        call("SaveAscii", InputWorkspace=workspace(1), Filename=str(tmp_path / "p.txt"), WorkspaceIndexMax=0)
    finally:
        os.umask(old)
    assert (tmp_path / "p.txt").stat().st_mode & 0o777 == 0o644

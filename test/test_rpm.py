"""The RPM, built for real with `bash rpm/build.sh OUTDIR` (what the release and rpm/README.md use).

Checks the package's file list, config files and scriptlets; rpmlint on the spec and the packages (when rpmlint
is installed); and, as root, an install into an empty `rpm --root` followed by an upgrade to release+1 and an
erase: the logs in /var/log/SNS_applications, the operator's /etc/livereduce.conf and edited config files survive.
Building takes seconds, twice (release 1 and 2), with a timeout of minutes; skipped when rpmbuild is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from livereduce.config import load_config, resolve

BUILD_TIMEOUT = 180  # seconds for one `bash rpm/build.sh` (about 5 s here)
DOC = "/usr/share/doc/livereduce"
LOGDIR = "/var/log/SNS_applications"
SNSDATA_UID = SNSDATA_GID = 4321  # the snsdata account and group in the test root's /etc/passwd, /etc/group

needs_rpmbuild = pytest.mark.skipif(
    shutil.which("rpmbuild") is None,
    reason="rpmbuild is not installed (Fedora/RHEL: dnf install rpm-build; Debian/Ubuntu: apt-get install rpm)",
)


def _build(outdir: Path, *rpmbuild_args: str) -> Path:
    """Run rpm/build.sh into outdir; the .noarch.rpm it leaves there."""
    proc = subprocess.run(
        ["bash", str(REPO / "rpm" / "build.sh"), str(outdir), *rpmbuild_args],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        env={**os.environ, "PYTHON": sys.executable},  # off Fedora: the wheel is built with the tests' Python
    )
    assert proc.returncode == 0, f"rpm/build.sh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    (rpm,) = outdir.glob("*.noarch.rpm")
    assert len(list(outdir.glob("*.src.rpm"))) == 1
    return rpm


def _rpm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["rpm", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"rpm {' '.join(args)}: {proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("rpm-release1"))


def _expected_paths() -> list[str]:
    paths = [
        "/usr/bin/livereduce",
        "/usr/lib/systemd/system/livereduce.service",
        "/etc/logrotate.d/livereduce",
        f"{DOC}/README.md",
        f"{DOC}/livereduce.conf.example",
        LOGDIR,
    ]
    paths += [f"{DOC}/docs/{p.name}" for p in sorted((REPO / "docs").glob("*.md"))]
    paths += [f"/usr/share/polkit-1/rules.d/{p.name}" for p in sorted((REPO / "systemd").glob("*.rules"))]
    # the other half of the systemd set-up, packaged when the source tree has it
    if (REPO / "systemd" / "livereduce.sysusers").exists():
        paths.append("/usr/lib/sysusers.d/livereduce.conf")
    if (REPO / "systemd" / "livereduce.tmpfiles").exists():
        paths.append("/usr/lib/tmpfiles.d/livereduce.conf")
    return paths


def _package_modules() -> list[str]:
    return sorted(
        p.relative_to(REPO).as_posix()
        for p in (REPO / "livereduce").rglob("*.py")
        if "__pycache__" not in p.parts
    )


def test_example_config_is_valid_and_complete():
    """The example the RPM ships as the operator's starting point loads without a warning."""
    path = REPO / "rpm" / "livereduce.conf.example"
    config, warnings = load_config(str(path))
    assert warnings == []
    assert config.instrument
    assert resolve(config).script_dir.startswith("/SNS/")


@needs_rpmbuild
@pytest.mark.timeout(2 * BUILD_TIMEOUT)
def test_rpm_contents(package: Path):
    files = _rpm("-qlp", str(package)).stdout.split()
    missing = [p for p in _expected_paths() if p not in files]
    assert not missing, f"not in {package.name}: {missing}"

    site = {f for f in files if re.match(r"^/usr/lib/python3\.\d+/site-packages/", f)}
    assert any(re.search(r"/site-packages/livereduce-[^/]+\.dist-info/METADATA$", f) for f in site)
    modules = {re.sub(r"^/usr/lib/python3\.\d+/site-packages/", "", f) for f in site}
    absent = [m for m in _package_modules() if m not in modules]
    assert not absent, f"Python modules missing from the RPM: {absent}"

    # no /etc/livereduce.conf: the unit's ConditionPathExists keeps the service down until an operator writes one
    assert "/etc/livereduce.conf" not in files
    assert not [f for f in files if "/demo/" in f or f.endswith("powgen.conf")]
    assert _rpm("-qpc", str(package)).stdout.split() == ["/etc/logrotate.d/livereduce"]


@needs_rpmbuild
@pytest.mark.timeout(2 * BUILD_TIMEOUT)
def test_no_scriptlet_removes_logs_or_config(package: Path):
    """The anchor's %preun removed the logs, and %preun also runs on upgrade."""
    scripts = _rpm("-qp", "--scripts", str(package)).stdout
    assert not re.search(r"\brm\b|unlink|rmdir|os\.remove|posix\.rmdir", scripts), scripts
    assert "livereduce.log" not in scripts
    comment = "No scriptlet touches the logs or /etc/livereduce.conf"
    assert "/etc/livereduce.conf" not in scripts.replace(comment, "")


@needs_rpmbuild
@pytest.mark.timeout(2 * BUILD_TIMEOUT)
def test_rpmlint_finds_no_errors(package: Path):
    if shutil.which("rpmlint") is None:
        pytest.skip("rpmlint is not installed (dnf install rpmlint; apt-get install rpmlint)")
    (srpm,) = package.parent.glob("*.src.rpm")
    proc = subprocess.run(
        ["rpmlint", "-r", "rpm/python-livereduce.rpmlintrc", "rpm/livereduce.spec", str(package), str(srpm)],
        cwd=REPO,  # the spec reads the version from livereduce/__init__.py
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line for line in proc.stdout.splitlines() if ": E: " in line]
    assert proc.returncode == 0 and not errors, proc.stdout + proc.stderr
    assert "0 errors" in proc.stdout


def _make_root(root: Path) -> None:
    """An empty system for `rpm --root`: /var/log, an snsdata account, and a /bin/sh (with its libraries) for
    the shell scriptlets."""
    (root / "etc").mkdir(parents=True)
    (root / "var" / "log").mkdir(parents=True)
    accounts = f"root:x:0:0::/root:/bin/sh\nsnsdata:x:{SNSDATA_UID}:{SNSDATA_GID}::/:/bin/false\n"
    (root / "etc" / "passwd").write_text(accounts)
    (root / "etc" / "group").write_text(f"root:x:0:\nsnsdata:x:{SNSDATA_GID}:\n")
    shell = Path(os.path.realpath(shutil.which("sh") or "/bin/sh"))
    (root / "bin").mkdir()
    shutil.copy2(shell, root / "bin" / "sh")
    libs = subprocess.run(["ldd", str(shell)], capture_output=True, text=True).stdout
    for lib in re.findall(r"(/\S+)", libs):
        target = root / lib.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), target)
    _rpm("--root", str(root), "--initdb")


def _owner_mode(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def _install(root: Path, *args: str) -> str:
    """rpm --root ROOT --nodeps ARGS; the messages other than Debian's warning that rpm is not dpkg, which
    must be none but the expected ones (a failed scriptlet is a fault)."""
    proc = _rpm("--root", str(root), "--nodeps", *args)
    return "\n".join(
        line
        for line in proc.stderr.splitlines()
        if line.strip() and "use Alien" not in line and "assuming you know what you are doing" not in line
    )


@needs_rpmbuild
@pytest.mark.timeout(3 * BUILD_TIMEOUT)
def test_upgrade_and_erase_keep_logs_and_config(package: Path, tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("rpm --root chroots into the root to run scriptlets, which needs root")
    if shutil.which("ldd") is None:
        pytest.skip("ldd is needed to give the test root a /bin/sh")
    release2 = _build(tmp_path / "release2", "--define", "release_number 2")
    root = tmp_path / "root"
    _make_root(root)
    logdir = root / LOGDIR.lstrip("/")

    assert _install(root, "-i", str(package)) == ""
    assert _rpm("--root", str(root), "-q", "python-livereduce").stdout.strip().endswith("-1.noarch")
    # %posttrans made the log directory as the anchor and livereduce.tmpfiles have it: snsdata's, mode 1755
    assert _owner_mode(logdir) == (SNSDATA_UID, SNSDATA_GID, 0o1755)
    assert not (root / "etc" / "livereduce.conf").exists()
    installed = {
        "usr/lib/systemd/system/livereduce.service": REPO / "systemd" / "livereduce.service",
        "etc/logrotate.d/livereduce": REPO / "rpm" / "logrotate.conf",
        f"{DOC.lstrip('/')}/livereduce.conf.example": REPO / "rpm" / "livereduce.conf.example",
    }
    for kind in ("sysusers", "tmpfiles"):
        if (REPO / "systemd" / f"livereduce.{kind}").exists():
            installed[f"usr/lib/{kind}.d/livereduce.conf"] = REPO / "systemd" / f"livereduce.{kind}"
    for path, source in installed.items():
        assert (root / path).read_bytes() == source.read_bytes(), path
    assert (root / "usr" / "bin" / "livereduce").read_text().startswith("#!/usr/bin/python3\n")

    # what an operator and the running service leave behind
    logrotate = (REPO / "rpm" / "logrotate.conf").read_bytes()
    kept = {
        logdir / "livereduce.log": b"2026-11-26 live log line\n",
        logdir / "livereduce.log.1.gz": b"rotated\n",
        logdir / "other_application.log": b"another SNS application's log\n",
        root / "etc" / "livereduce.conf": b'{"instrument": "POWGEN"}\n',
        root / "etc" / "logrotate.d" / "livereduce": logrotate + b"# edited\n",
    }
    for path, content in kept.items():
        path.write_bytes(content)
    os.chown(logdir / "livereduce.log", SNSDATA_UID, SNSDATA_GID)

    assert _install(root, "-U", str(release2)) == ""
    assert _rpm("--root", str(root), "-q", "python-livereduce").stdout.strip().endswith("-2.noarch")
    for path, content in kept.items():
        assert path.read_bytes() == content, f"{path} changed by the upgrade"
    assert (logdir / "livereduce.log").stat().st_uid == SNSDATA_UID
    assert _owner_mode(logdir) == (SNSDATA_UID, SNSDATA_GID, 0o1755), "the upgrade changed the log dir"

    erased = _install(root, "-e", "python-livereduce")
    saved = "warning: /etc/logrotate.d/livereduce saved as /etc/logrotate.d/livereduce.rpmsave"
    assert erased == saved, erased
    assert _rpm("--root", str(root), "-q", "python-livereduce", check=False).returncode != 0
    assert not (root / "usr" / "bin" / "livereduce").exists()
    for path, content in kept.items():
        if path.name == "livereduce" and path.parent.name == "logrotate.d":
            continue  # an edited %config file is kept as livereduce.rpmsave
        assert path.read_bytes() == content, f"{path} changed by the erase"
    assert (root / "etc" / "logrotate.d" / "livereduce.rpmsave").exists()

"""systemd/livereduce.service against systemd's own tools and against the daemon it runs.

- `systemd-analyze verify` accepts the unit (its ExecStart pointed at an installed `livereduce`), and
  systemd-sysusers / systemd-tmpfiles accept livereduce.sysusers / livereduce.tmpfiles in a scratch root.
- `systemd-analyze security --offline=yes` rates its exposure at most 4.0 ("OK"); the score is printed.
- Its settings agree with what the daemon does (exit code 2, clean exit on a config change, the watchdog's
  ping interval, the state directory, numba's cache, the log path, the memory guard, the installed docs).
- The daemon run the way the unit runs it, without systemd as PID 1: from a read-only install (a throwaway
  venv of /usr/bin/python3.11, the project pip-installed into it, then chmod -R a-w), as an unprivileged user
  (`setpriv` to nobody when the test runs as root), in the unit's working directory, with the environment
  systemd would give it (NOTIFY_SOCKET bound by the test, STATE_/CACHE_/LOGS_DIRECTORY in a temporary tree,
  the unit's Environment= with %S/%C/%L resolved into that tree), the unit's UMask, against an in-test fake
  SMS: it says READY=1, reduces a run (a status with events, a product file written by the post_proc script
  with the umask's mode), logs where the unit and config say, caches numba's kernels in the CacheDirectory,
  says STOPPING=1 on SIGTERM and exits 0.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from livereduce import logs
from livereduce.cli import EXIT_SETUP
from livereduce.config import Config

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "livereduce.service"
SYSUSERS = REPO / "systemd" / "livereduce.sysusers"
TMPFILES = REPO / "systemd" / "livereduce.tmpfiles"
SYSTEM_PYTHON = Path("/usr/bin/python3.11")  # Debian's, readable by every user (pyenv's under /root is not)
DOC_PREFIX = "file:///usr/share/doc/livereduce/"  # the RPM's %doc README.md docs
EXPOSURE = re.compile(r"Overall exposure level for \S+: ([\d.]+) (\w+)")
STATUS = re.compile(r"^STATUS=(\w+): run (\d+), (\d+) cycles, (\d+) events, (\d+) script errors$", re.M)
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEADLINE_S = 90.0  # a deadline, not a wait: the first start compiles numba's kernels into an empty cache


# -- the unit file ------------------------------------------------------------------------------------------
def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}}: repeated keys accumulate, as systemd reads them
    (an empty assignment resets the list); comments and backslash continuations are handled."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    for line in logical:
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"a setting outside any section: {line!r}"
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if value == "":
            current[key] = [""]
        else:
            current.setdefault(key, []).append(value)
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


def one(unit, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values, f"[{section}] {key}= is not set"
    return values[-1]


def words(unit, section: str, key: str) -> list[str]:
    return [w for value in unit[section].get(key, []) for w in value.split()]


def environment(unit) -> dict[str, str]:
    env = {}
    for value in unit["Service"].get("Environment", []):
        for assignment in shlex.split(value):
            name, _, val = assignment.partition("=")
            env[name] = val
    return env


def seconds(value: str) -> float:
    """systemd's time spans as the unit uses them: a number of seconds, or with a unit (s, min, h)."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, suffix in re.findall(r"([\d.]+)\s*([a-z]*)", value):
        total += float(number) * units[suffix]
    return total


def test_the_units_settings_agree_with_the_daemon(unit):
    service = unit["Service"]
    # started: the daemon says READY=1 (sd_notify), only from its main process (the worker never notifies)
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    notifiers = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "livereduce").rglob("*.py")
        if re.search(r"from livereduce import .*\bsystemd\b|import livereduce\.systemd", p.read_text())
    ]
    assert notifiers == ["livereduce/daemon.py"], notifiers
    # exit 2 = fix the setup; a restart cannot help
    assert str(EXIT_SETUP) in words(unit, "Service", "RestartPreventExitStatus")
    # a changed config makes the daemon exit 0 so that systemd restarts it: on-failure would leave it stopped
    assert one(unit, "Service", "Restart") == "always" or "0" in words(
        unit, "Service", "RestartForceExitStatus"
    )
    assert seconds(one(unit, "Service", "RestartSec")) > 0
    # never give up overnight: no start limit, or one that RestartSec can never reach
    interval = seconds(one(unit, "Unit", "StartLimitIntervalSec"))
    if interval:
        burst = int(one(unit, "Unit", "StartLimitBurst"))
        assert burst * seconds(one(unit, "Service", "RestartSec")) > interval
    # the watchdog: pinged at half of WatchdogSec while the session progresses; the daemon's own fix for a hung
    # script (a new worker after step_timeout) comes before the pings stop, and systemd acts within 10 minutes
    watchdog = seconds(one(unit, "Service", "WatchdogSec"))
    assert watchdog >= 60, f"WatchdogSec={watchdog}: a busy machine could delay a ping that long"
    default_step_timeout = max(10 * Config().update_every, 300.0)
    assert default_step_timeout <= max(3 * Config().update_every, Config().watchdog_threshold)
    assert Config().watchdog_threshold + watchdog <= 600, "the unit's comment promises 10 minutes"
    # state: checkpoints and the lock go to $STATE_DIRECTORY (config state_dir null); run from there, not /tmp
    state = one(unit, "Service", "StateDirectory")
    assert Config().state_dir is None
    working = one(unit, "Service", "WorkingDirectory")
    assert working == f"%S/{state}" and not working.startswith("/tmp")
    # numba's cache: in the CacheDirectory (the installed package is read-only)
    cache = one(unit, "Service", "CacheDirectory")
    numba_cache = environment(unit).get("NUMBA_CACHE_DIR", "")
    assert numba_cache == f"%C/{cache}" or numba_cache.startswith(f"%C/{cache}/"), numba_cache
    # the log: as snsdata with log_file null the daemon writes logs.SNS_LOG, inside LogsDirectory
    assert one(unit, "Service", "User") == "snsdata" and one(unit, "Service", "Group") == "snsdata"
    assert Config().log_file is None
    assert Path(logs.SNS_LOG).parent == Path("/var/log") / one(unit, "Service", "LogsDirectory")
    # the config: the unit waits for the file it runs with
    exec_start = shlex.split(one(unit, "Service", "ExecStart"))
    assert exec_start[0] == "/usr/bin/livereduce" and exec_start[1] == "run"
    assert one(unit, "Unit", "ConditionPathExists") == exec_start[-1] == "/etc/livereduce.conf"
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"  # SIGHUP: re-read the scripts
    # hardening that must not break the scripts
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert "-/SNS" in words(unit, "Service", "ReadWritePaths")
    assert "MemoryDenyWriteExecute" not in service, "numba's JIT needs writable+executable memory"
    assert one(unit, "Service", "UMask") == "0027"
    # the memory guard (70 % of RAM by default) acts before the cgroup's limit
    memory_max = one(unit, "Service", "MemoryMax")
    assert memory_max.endswith("%")
    assert float(memory_max[:-1]) > Config().system_mem_limit_perc
    # Documentation= names files the package installs: README.md and docs/*.md under /usr/share/doc/livereduce
    docs = words(unit, "Unit", "Documentation")
    assert docs and docs[0] == DOC_PREFIX + "README.md"
    for url in docs:
        assert url.startswith(DOC_PREFIX), url
        assert (REPO / url[len(DOC_PREFIX) :]).is_file(), f"{url}: not in the source tree the RPM installs"


# -- systemd's tools ------------------------------------------------------------------------------------------
def _systemd_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed here")
    return path


def _installed_livereduce() -> str:
    """An installed `livereduce` console script for ExecStart= (verify checks that it exists)."""
    for candidate in (Path(sys.executable).parent / "livereduce", shutil.which("livereduce")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.skip("no installed livereduce console script (pip install the project)")


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    analyze = _systemd_tool("systemd-analyze")
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/usr/bin/livereduce ", _installed_livereduce() + " "))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    print(output or "systemd-analyze verify: no complaints")
    assert result.returncode == 0, output
    assert UNIT.name not in output, output  # warnings (unknown keys, bad values) name the unit file


def test_sysusers_and_tmpfiles_make_the_account_and_the_log_directory(tmp_path):
    sysusers, tmpfiles = _systemd_tool("systemd-sysusers"), _systemd_tool("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    result = subprocess.run(
        [sysusers, f"--root={root}", str(SYSUSERS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    entry = next(
        line for line in (root / "etc" / "passwd").read_text().splitlines() if line.startswith("snsdata:")
    )
    _, _, uid, gid, _, home, _ = entry.split(":")
    assert home == "/var/lib/livereduce"
    assert any(
        line.startswith(f"snsdata:x:{gid}:") for line in (root / "etc" / "group").read_text().splitlines()
    )
    if os.geteuid() != 0:
        pytest.skip("systemd-tmpfiles needs root to give the log directory to snsdata")
    (root / "var" / "log").mkdir(parents=True)
    result = subprocess.run(
        [tmpfiles, f"--root={root}", "--create", str(TMPFILES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    made = (root / "var" / "log" / "SNS_applications").stat()
    assert (made.st_uid, made.st_gid, stat.S_IMODE(made.st_mode)) == (int(uid), int(gid), 0o1755)


def test_security_exposure_is_ok():
    analyze = _systemd_tool("systemd-analyze")
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = EXPOSURE.search(result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    score, verdict = float(found.group(1)), found.group(2)
    print(f"systemd-analyze security --offline=yes {UNIT.relative_to(REPO)}: {score} {verdict}")
    print("\n".join(line for line in result.stdout.splitlines() if line.startswith("✗")))
    assert score <= 4.0, result.stdout


# -- the daemon, run as the unit runs it ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def readonly_install():
    """A venv of /usr/bin/python3.11 with the project pip-installed (not editable), in a world-readable
    temporary directory, then made read-only: what the RPM gives the service user."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"{SYSTEM_PYTHON} is absent: no interpreter every user can run")
    base = Path(tempfile.mkdtemp(prefix="livereduce-unit-"))
    base.chmod(0o755)
    started = time.monotonic()
    try:
        source = base / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(REPO / "livereduce", source / "livereduce", ignore=ignore)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, source / name)
        venv = base / "venv"
        made = subprocess.run(
            [str(SYSTEM_PYTHON), "-m", "venv", str(venv)], capture_output=True, text=True, timeout=120
        )
        if made.returncode != 0:
            pytest.skip(f"{SYSTEM_PYTHON} -m venv failed: {made.stderr.strip()[-500:]}")
        installed = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(source)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if installed.returncode != 0:
            pytest.skip(f"pip could not install the project: {installed.stderr.strip()[-1000:]}")
        shutil.rmtree(source)
        subprocess.run(["chmod", "-R", "a-w", str(venv)], check=True)
        print(f"read-only install in {venv}: {time.monotonic() - started:.1f} s")
        yield venv
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


PROC = """from mantid.simpleapi import ConvertUnits
ConvertUnits(InputWorkspace=input, OutputWorkspace=output, Target="dSpacing")
"""
POST_PROC = """import json, os
from mantid.simpleapi import SaveNexusProcessed
SaveNexusProcessed(InputWorkspace=accumulation, Filename=os.path.join({out!r}, "PG3_live.nxs"))
path = os.path.join({out!r}, "PG3_live.json")
with open(path + ".tmp", "w") as f:
    json.dump({{"events": accumulation.getNumberEvents()}}, f)
os.replace(path + ".tmp", path)
"""


class Notifications:
    """A datagram socket where systemd's would be ($NOTIFY_SOCKET, a path, writable by every user)."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        path.chmod(0o777)
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def read(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(65536).decode(errors="replace"))
            except BlockingIOError:
                return self.messages

    def statuses(self) -> list[tuple[str, int, int, int, int]]:
        found = STATUS.findall("\n".join(self.read()))
        return [(m[0], int(m[1]), int(m[2]), int(m[3]), int(m[4])) for m in found]

    def close(self) -> None:
        self.sock.close()


def _run_as() -> tuple[list[str], pwd.struct_passwd]:
    """The command prefix that drops root (setpriv, else runuser) and the user the daemon runs as."""
    if os.geteuid() != 0:
        return [], pwd.getpwuid(os.geteuid())
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root and there is no user nobody to run the daemon as")
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"], user
    if shutil.which("runuser"):
        return ["runuser", "-u", user.pw_name, "--"], user
    pytest.skip("running as root without setpriv or runuser to drop privileges")


def _owned_dir(path: Path, user: pwd.struct_passwd, mode: int) -> Path:
    """A directory as systemd makes a StateDirectory= and the like: owned by the service's user."""
    path.mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(mode)
    return path


@pytest.mark.timeout(600)
def test_the_daemon_runs_as_the_unit_runs_it(readonly_install, unit):
    from livereduce.servers.adara import FakeSMS

    prefix, user = _run_as()
    if user.pw_name == "snsdata":
        pytest.skip("as snsdata the daemon would log to the host's /var/log/SNS_applications (log_file null)")
    base = Path(tempfile.mkdtemp(prefix="livereduce-unit-run-"))
    base.chmod(0o755)
    specifiers = {"%S": base / "var/lib", "%C": base / "var/cache", "%L": base / "var/log"}

    def resolve(value: str) -> str:
        for spec, path in specifiers.items():
            value = value.replace(spec, str(path))
        return value

    sms = FakeSMS(port=0, rate=20_000, run_seconds=600.0, instrument="POWGEN", seed=3, wait_for_client=True)
    notify = daemon = None
    try:
        made = {}
        for kind, spec in (("State", "%S"), ("Cache", "%C"), ("Logs", "%L")):
            mode = int(unit["Service"].get(f"{kind}DirectoryMode", ["0755"])[-1], 8)
            made[kind] = _owned_dir(specifiers[spec] / one(unit, "Service", f"{kind}Directory"), user, mode)
        state, cache, logs_dir = made["State"], made["Cache"], made["Logs"]
        products = _owned_dir(base / "SNS" / "PG3" / "shared" / "live", user, 0o755)  # a ReadWritePaths= dir
        # the instrument's scripts: the test user's, readable by all, writable by no one else
        scripts = base / "scripts"
        scripts.mkdir(mode=0o755)
        for name, text in (("proc", PROC), ("post_proc", POST_PROC.format(out=str(products)))):
            (scripts / f"reduce_PG3_live_{name}.py").write_text(text)
            (scripts / f"reduce_PG3_live_{name}.py").chmod(0o644)
        port = sms.start()
        config = base / "etc" / "livereduce.conf"
        config.parent.mkdir()
        # the shipped example, with what an operator sets for their site: the DAS, the scripts, the cadence
        shipped = json.loads((REPO / "rpm" / "livereduce.conf.example").read_text())
        assert "log_file" not in shipped and "state_dir" not in shipped  # the defaults the unit provides
        shipped.update(
            address=f"127.0.0.1:{port}", script_dir=str(scripts), update_every=0.5, status={"port": 0}
        )
        config.write_text(json.dumps(shipped, indent=2))
        config.chmod(0o644)
        notify = Notifications(base / "notify")
        # what systemd gives a User= service: its user's identity, the directories' variables, Environment=
        env = {
            "PATH": SYSTEMD_PATH,
            "LANG": "C.UTF-8",
            "HOME": user.pw_dir,
            "USER": user.pw_name,
            "LOGNAME": user.pw_name,
            "SHELL": user.pw_shell,
            "NOTIFY_SOCKET": str(notify.path),
            "WATCHDOG_USEC": str(int(seconds(one(unit, "Service", "WatchdogSec")) * 1e6)),
            "STATE_DIRECTORY": str(state),
            "CACHE_DIRECTORY": str(cache),
            "LOGS_DIRECTORY": str(logs_dir),
            **{name: resolve(value) for name, value in environment(unit).items()},
        }
        numba_cache = Path(env["NUMBA_CACHE_DIR"])
        argv = shlex.split(one(unit, "Service", "ExecStart"))
        argv = [str(readonly_install / "bin" / "livereduce"), *argv[1:-1], str(config)]
        working = Path(resolve(one(unit, "Service", "WorkingDirectory")))
        assert working == state
        umask = int(one(unit, "Service", "UMask"), 8)
        out = open(base / "daemon.out", "w")  # the journal: stdout and stderr
        started = time.monotonic()
        daemon = subprocess.Popen(
            [*prefix, *argv],
            cwd=working,
            env=env,
            umask=umask,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

        def output() -> str:
            return (base / "daemon.out").read_text(errors="replace")

        # log_file null: /var/log/SNS_applications/livereduce.log as snsdata (the host's: a path the test cannot
        # move), ./livereduce.log (the working directory) as anyone else; a daemon that honoured $LOGS_DIRECTORY
        # would write $LOGS_DIRECTORY/livereduce.log, for every user
        by_user = Path(logs.SNS_LOG) if user.pw_name == "snsdata" else working / "livereduce.log"

        def log_path() -> Path:
            in_logs = logs_dir / "livereduce.log"
            return in_logs if in_logs.exists() else by_user

        def wait_for(what: str, condition) -> None:
            deadline = time.monotonic() + DEADLINE_S
            while not condition():
                if daemon.poll() is not None or time.monotonic() > deadline:
                    log = log_path().read_text(errors="replace") if log_path().exists() else ""
                    raise AssertionError(
                        f"not seen within {DEADLINE_S} s: {what} (exit {daemon.poll()}; notifications "
                        f"{notify.read()[-4:]})\n--- log ---\n{log[-4000:]}\n--- output ---\n{output()[-3000:]}"
                    )
                time.sleep(0.1)

        wait_for("READY=1", lambda: "READY=1" in notify.read())
        print(f"READY=1 after {time.monotonic() - started:.1f} s")
        wait_for(
            "a status with events, and the post_proc's product",
            lambda: (
                any(s[0] == "running" and s[3] > 0 for s in notify.statuses())
                and (products / "PG3_live.json").exists()
            ),
        )
        print(f"first reduced cycle after {time.monotonic() - started:.1f} s: {notify.statuses()[-1]}")
        assert "WATCHDOG=1" in notify.read(), "the watchdog was not fed while the session made progress"
        daemon.send_signal(15)  # systemctl stop: SIGTERM to the main process (KillMode=mixed)
        code = daemon.wait(30)
        assert code == 0, output()[-3000:]
        assert "STOPPING=1" in notify.read()
        assert notify.messages.index("READY=1") < notify.messages.index("STOPPING=1")

        # it reduced data: the post_proc script saw the accumulated events and wrote its products
        assert json.loads((products / "PG3_live.json").read_text())["events"] > 0
        nexus = (products / "PG3_live.nxs").stat()
        assert stat.S_IMODE(nexus.st_mode) == 0o666 & ~umask, "products are readable by the group only"
        assert nexus.st_uid == user.pw_uid
        # its log: where the unit and config say for this user, with the whole life in it
        log = log_path()
        print(f"running as {user.pw_name}, log_file null: the log is {log}")
        assert log.exists(), log
        text = log.read_text(errors="replace")
        for line in ("starting with " + str(config), f"holding {state}/", "stopped (exit code 0)"):
            assert line in text, text[-4000:]
        assert "Traceback" not in text and " - ERROR - " not in text, text[-4000:]
        assert "cannot write the log file" not in output(), output()[-3000:]
        print("warnings on the console:", [line for line in output().splitlines() if " - WARNING - " in line])
        # state: the lock in $STATE_DIRECTORY; numba's kernels in the CacheDirectory, nothing in the install
        assert (state / "livereduce.lock").exists()
        assert any(numba_cache.rglob("*.nbi")), f"numba cached nothing in {numba_cache}"
        assert not any(readonly_install.rglob("*.nbi"))
    finally:
        if daemon is not None and daemon.poll() is None:
            os.killpg(daemon.pid, 9)
            daemon.wait(10)
        if notify is not None:
            notify.close()
        sms.stop()
        shutil.rmtree(base, ignore_errors=True)

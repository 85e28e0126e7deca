"""`livereduce status [CONFIG] [--url URL] [--json]`: the running daemon's /status, for a terminal."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request

from livereduce.config import load_config, resolve_config_path
from livereduce.errors import ConfigError


def status_url(config_arg: str | None) -> str:
    """The configured status server's URL (ConfigError when the config turns it off or picks a free port)."""
    config, _ = load_config(resolve_config_path(config_arg))
    if not config.status_enabled:
        raise ConfigError("status", "enabled to ask the daemon (or give --url)", False)
    if config.status_port == 0:
        raise ConfigError("status.port", "a fixed port, or --url with the URL in the daemon's log", 0)
    host = "127.0.0.1" if config.status_host in ("0.0.0.0", "") else config.status_host  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.status_port}/"


def fetch(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url.rstrip("/") + "/status", timeout=timeout) as response:  # noqa: S310
        return json.load(response)


def main(config_arg: str | None, url: str | None, as_json: bool) -> int:
    try:
        url = url or status_url(config_arg)
    except ConfigError as exc:
        print(f"livereduce status: {exc}", file=sys.stderr)
        return 2
    try:
        status = fetch(url)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"livereduce status: no livereduce status server at {url} ({reason})", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2) if as_json else "\n".join(render(status)))
    return 0


def render(s: dict) -> list[str]:
    ev, ms, listener, run = s["events"], s["timing_ms"], s["listener"], s["run"]
    lines = [
        f"{s['instrument']}  engine {s['engine']}  livereduce {s['version']}  up {_duration(s['uptime_s'])}"
        + (f"\nengine     {s['engine']}: {s['engine_reason']}" if s.get("engine_reason") else ""),
        f"listener   {listener['kind']} {listener['address']}  "
        + ("connected" if listener["connected"] else "NOT CONNECTED")
        + (f"  ({listener['last_error']})" if listener.get("last_error") else ""),
        f"state      {s['phase']}" + (f": {s['waiting_reason']}" if s.get("waiting_reason") else ""),
        f"run        {run['number'] or 'none'} ({run['state']})  cycle {s['cycle']}",
        f"events     last chunk {ev['last_chunk']:,}  run {ev['run']:,}  accumulated {ev['accumulated']:,}  "
        f"rate {ev['rate_per_s']:,.0f}/s  outside bins {ev['outside_bins']:,}  dropped {ev['dropped_total']:,}",
        f"timing     proc {_ms(ms['proc'])}  post_proc {_ms(ms['post_proc'])}  cycle {_ms(ms['cycle'])}",
    ]
    mem = s.get("memory") or {}
    if mem:
        limits = (
            f" (soft {mem['soft_limit_mb']:,.0f} MB, hard {mem['hard_limit_mb']:,.0f} MB)"
            if mem.get("hard_limit_mb")
            else " (no limit)"
        )
        lines.append(f"memory     {mem['rss_mb']:,.0f} MB{limits}")
    for script in s["scripts"]:
        loaded = _clock(script["loaded_at"]) if script.get("loaded_at") else "?"
        lines.append(f"script     {script['kind']} {script['path']}  md5 {script['md5']}  loaded {loaded}")
    error = s.get("last_error")
    if error:
        where = (
            f"{error['file']}:{error['line']}" if error.get("line") else error.get("file") or error["script"]
        )
        now = "FAILING" if error["script"] in s.get("failing", []) else "since recovered"
        lines.append(
            f"last error {error['script']} at {where} ({error['repeat']}× in a row, {_clock(error['time'])}, "
            f"{now}): {error['message']}"
        )
    if s["restarts_total"]:
        last = s["restarts"][-1]
        lines.append(f"restarts   {s['restarts_total']} (last {_clock(last['time'])}: {last['why']})")
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"

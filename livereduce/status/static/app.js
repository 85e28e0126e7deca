// The live page: status pushed by server-sent events; plots fetched again when the worker publishes new data.
"use strict";
const $ = (id) => document.getElementById(id);
const fmt = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
let plotVersion = -1;

function showStatus(s) {
  $("instrument").textContent = s.instrument;
  $("version").textContent = s.version;
  const c = $("connected");
  c.textContent = s.listener.connected ? "connected" : "not connected";
  c.className = "pill " + (s.listener.connected ? "ok" : "bad");
  c.title = s.listener.kind + " " + s.listener.address;
  $("run").textContent = s.run.number || "none";
  $("run-state").textContent = "(" + s.run.state + ")";
  $("cycle").textContent = fmt(s.cycle);
  $("rate").textContent = fmt(s.events.rate_per_s);
  $("run-events").textContent = fmt(s.events.run);
  $("proc-ms").textContent = s.timing_ms.proc === null ? "–" : fmt(s.timing_ms.proc) + " ms";
  $("post-ms").textContent = s.timing_ms.post_proc === null ? "–" : fmt(s.timing_ms.post_proc) + " ms";
  $("phase").textContent = s.phase + (s.waiting_reason ? ": " + s.waiting_reason : "");
  const e = s.last_error, err = $("error");
  if (e && s.failing.length) {
    const where = (e.file || e.script) + (e.line ? ":" + e.line : "");
    err.textContent = `${e.script} script error at ${where} (${e.repeat}× in a row): ${e.message}`;
    err.hidden = false;
  } else {
    err.hidden = true;
  }
  if (s.plot_version !== plotVersion && s.plot_workspace) {
    plotVersion = s.plot_version;
    refreshPlots(s.plot_workspace);
  }
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(url + ": " + r.status);
  return r.json();
}

async function refreshPlots(workspace) {
  try {
    const p = await getJSON("/plot/" + encodeURIComponent(workspace) + ".json");
    $("spectra-title").textContent = `${p.workspace}: run ${p.run_number}, ${p.n_spectra} spectra`;
    const lines = p.curves.map((c) => ({ x: c.x, y: c.y, name: c.label, mode: "lines", type: "scatter" }));
    Plotly.react("spectra", lines, {
      margin: { t: 10, r: 10 }, xaxis: { title: { text: p.x_label } }, yaxis: { title: { text: p.y_label } },
    });
    if (p.image) {
      const [rows, cols] = p.image_shape, z = [];
      for (let r = 0; r < rows; r++) z.push(p.image.slice(r * cols, (r + 1) * cols));
      $("image-section").hidden = false;
      Plotly.react("image", [{ z: z, type: "heatmap", colorscale: "Viridis" }], { margin: { t: 10, r: 10 } });
    }
    const rates = await getJSON("/rates.json");
    Plotly.react("rates", [{
      x: rates.map((r) => new Date(r.time * 1000)), y: rates.map((r) => r.rate), mode: "lines", type: "scatter",
    }], { margin: { t: 10, r: 10 }, yaxis: { title: { text: "events/s" }, rangemode: "tozero" } });
    const log = $("log");
    log.textContent = (await getJSON("/log.json")).join("\n");
    log.scrollTop = log.scrollHeight;  // the newest line in view
  } catch (err) {
    console.warn(err);
  }
}

const source = new EventSource("/events");
source.addEventListener("status", (ev) => showStatus(JSON.parse(ev.data)));
source.onerror = () => { const c = $("connected"); c.textContent = "daemon unreachable"; c.className = "pill bad"; };

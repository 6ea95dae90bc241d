// foreman's status page: draws each snapshot `/ui/events` pushes. Every value goes in
// through textContent, never as HTML, so a model or key name cannot inject markup.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let admin = false;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function duration(ms) {
    if (ms === null || ms === undefined) return "unknown";
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min " + (s % 60) + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString();
  }

  function keyName(job) {
    const key = job.key || "(open)";
    return job.user ? key + " / " + job.user : key;
  }

  function state(text) {
    return el("td", text, "state " + text);
  }

  function shortId(id) {
    const c = el("td");
    c.appendChild(el("code", id.slice(-8))).title = id;
    return c;
  }

  // A running job's stream: tokens per second once two tokens have come, and the count.
  function rate(job) {
    if (job.tokens_per_s != null) {
      return job.tokens_per_s.toFixed(1) + " tok/s · " + job.streamed_tokens + " tokens";
    }
    if (job.streamed_tokens) return job.streamed_tokens + " tokens";
    return job.state === "loading" ? "loading the model" : "no tokens yet";
  }

  function cancelCell(job) {
    const c = el("td", undefined, "action");
    const b = el("button", "Cancel", "cancel");
    b.type = "button";
    b.dataset.cancel = job.id;
    b.setAttribute("aria-label", "Cancel job " + job.id + " (" + job.model + ")");
    b.addEventListener("click", () => cancel(job.id, b));
    c.appendChild(b);
    return c;
  }

  function fill(table, rows, columns, empty) {
    const body = $(table).tBodies[0];
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.cancel : undefined;
    body.replaceChildren();
    if (rows.length === 0) {
      const tr = el("tr");
      const td = el("td", empty, "empty");
      td.colSpan = columns;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    // Each cell carries its column's name, the caption it shows where the table is laid
    // out as cards (narrow screens).
    const heads = Array.from($(table).tHead.rows[0].cells, (th) => th.textContent.trim());
    for (const tr of rows) {
      Array.from(tr.cells).forEach((td, i) => { if (heads[i]) td.dataset.label = heads[i]; });
      body.appendChild(tr);
    }
    // Redrawing on every snapshot must not steal the keyboard focus from a button.
    if (focused) {
      const again = body.querySelector('[data-cancel="' + focused + '"]');
      if (again) again.focus();
    }
  }

  function jobRow(job, cells) {
    const tr = el("tr");
    tr.dataset.job = job.id;
    for (const c of cells) tr.appendChild(c);
    return tr;
  }

  const HOUR_MS = 3600 * 1000;
  // Samples are 10 s apart; a longer gap is time foreman was not running.
  const GAP_MS = 30 * 1000;

  // Plots the hour before `now`, left to right, breaking the line where samples are missing.
  function sparkline(id, samples, value, now) {
    const svg = $(id);
    svg.replaceChildren();
    const start = now - HOUR_MS;
    const shown = samples.filter((x) => x.at_ms >= start);
    const max = Math.max(1, ...shown.map(value));
    let points = [];
    let before = null;
    const flush = () => {
      if (points.length >= 2) {
        const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
        line.setAttribute("points", points.join(" "));
        svg.appendChild(line);
      }
      points = [];
    };
    for (const x of shown) {
      if (before !== null && x.at_ms - before > GAP_MS) flush();
      const left = ((x.at_ms - start) / HOUR_MS) * 300;
      points.push(left.toFixed(1) + "," + (58 - (value(x) / max) * 56).toFixed(1));
      before = x.at_ms;
    }
    flush();
  }

  function draw(s) {
    admin = s.viewer.admin;
    $("viewer").textContent = s.viewer.key === ""
      ? "open foreman (no keys): everyone is an admin"
      : "key " + s.viewer.key + (admin ? " (admin: every job)" : " (your jobs only)");
    if (s.viewer.key === "") $("logout-form").hidden = true;

    fill("targets", s.targets.map((t) => {
      const tr = el("tr");
      tr.appendChild(el("td", t.name));
      tr.appendChild(state(t.up ? "up" : "down"));
      tr.appendChild(el("td", t.running + " of " + t.parallel));
      const models = t.resident.length ? t.resident.join(", ") : "none loaded";
      const pulling = t.pulling.length ? " · pulling " + t.pulling.join(", ") : "";
      tr.appendChild(el("td", models + pulling));
      return tr;
    }), 4, "no targets");

    fill("running", s.running.map((j) => jobRow(j, [
      shortId(j.id), el("td", keyName(j)), el("td", j.model), el("td", j.target || ""),
      state(j.state), el("td", duration(s.now_ms - j.updated_ms)), el("td", rate(j), "rate"),
      cancelCell(j),
    ])), 8, "nothing running");

    $("depth").textContent = "(" + s.depth + " waiting" +
      (s.estimated_wait_ms != null ? ", about " + duration(s.estimated_wait_ms) + " to drain" : "") + ")";
    fill("queued", s.queued.map((j) => jobRow(j, [
      el("td", j.position != null ? "#" + j.position : ""), shortId(j.id), el("td", keyName(j)),
      el("td", j.model), el("td", j.priority), el("td", duration(j.estimated_wait_ms)), cancelCell(j),
    ])), 7, "the queue is empty");

    fill("recent", s.recent.map((j) => {
      const outcome = state(j.state);
      if (j.error) outcome.title = j.error;
      return jobRow(j, [
        shortId(j.id), el("td", keyName(j)), el("td", j.model), outcome,
        el("td", clock(j.updated_ms)), el("td", j.output_tokens != null ? j.output_tokens : ""),
      ]);
    }), 6, "no job has ended yet");

    fill("usage", s.usage.map((u) => {
      const tr = el("tr");
      tr.appendChild(el("td", u.key || "(open)"));
      tr.appendChild(el("td", u.requests));
      tr.appendChild(el("td", u.prompt_tokens));
      tr.appendChild(el("td", u.output_tokens));
      tr.appendChild(el("td", duration(u.gpu_ms)));
      return tr;
    }), 5, "no usage today");

    const h = s.history;
    sparkline("plot-depth", h, (x) => x.depth, s.now_ms);
    sparkline("plot-wait", h, (x) => x.wait_ms, s.now_ms);
    sparkline("plot-done", h, (x) => x.finished, s.now_ms);
    const last = h[h.length - 1];
    $("now-depth").textContent = last ? "(now " + last.depth + ")" : "(collecting)";
    $("now-wait").textContent = last ? "(now " + duration(last.wait_ms) + ")" : "(collecting)";
    $("now-done").textContent = last ? "(now " + last.finished + ")" : "(collecting)";
  }

  async function cancel(id, button) {
    button.disabled = true;
    try {
      const r = await fetch("/ui/jobs/" + encodeURIComponent(id) + "/cancel", {
        method: "POST", credentials: "same-origin",
      });
      $("notice").textContent = r.ok
        ? "Job " + id + " cancelled."
        : "Could not cancel job " + id + ": " + ((await r.json().catch(() => ({}))).error || r.status);
    } catch (err) {
      $("notice").textContent = "Could not cancel job " + id + ": " + err;
    }
  }

  function connect() {
    const events = new EventSource("/ui/events");
    events.addEventListener("open", () => {
      $("live").textContent = "Live";
      $("live").className = "live on";
    });
    events.addEventListener("snapshot", (e) => draw(JSON.parse(e.data)));
    events.addEventListener("problem", (e) => { $("notice").textContent = e.data; });
    events.addEventListener("ended", () => {
      events.close();
      window.location.assign("/ui");
    });
    events.addEventListener("error", () => {
      $("live").textContent = "Disconnected: reconnecting…";
      $("live").className = "live off";
    });
  }

  connect();
})();

/* What an instance has in flight (GET /api/instances/<id>/work): activities running and
 * on which worker, results waiting for the resume, held and queued activities, timers,
 * awaited events, and whether it is drained ("paused and quiet, go ahead"). */

import { fmtTime, h, instanceLink, plural, relative } from "./format.js";

export function workPanel(work) {
  if (!work) return null;
  const rows = [];
  for (const w of work.warnings) rows.push(["Warning", h("span", { class: "work-warning" }, w)]);
  for (const a of work.running) {
    const since = a.started_at ? `, started ${fmtTime(a.started_at)} (${relative(a.started_at)})` : "";
    rows.push(["Running", `${a.name} (task ${a.task_id}, attempt ${a.attempt}${since}) on ${a.worker}`]);
  }
  for (const r of work.waiting_results) {
    const after = work.status === "PAUSED" ? " (after the resume)" : "";
    rows.push(["Result waiting",
      `${r.name || "?"} (task ${r.task_id}) ${r.ok ? "completed" : "failed"} at ${fmtTime(r.finished_at)}; handed over at the next step${after}`]);
  }
  for (const q of work.held) rows.push(["Held", queuedText(q)]);
  for (const q of work.queued) rows.push(["Queued", queuedText(q)]);
  for (const t of work.timers) rows.push(["Timer", `task ${t.task_id} fires at ${fmtTime(t.fire_at)}`]);
  for (const e of work.events) {
    rows.push(["Waiting for", `event “${e.name}”${e.timeout_at ? ` until ${fmtTime(e.timeout_at)}` : ""}`]);
  }
  for (const c of work.children) {
    if (c.drained) continue;
    rows.push(["Child running", [instanceLink(c.instance_id), ` (${c.name})`]]);
  }
  const drained = work.drained
    ? (work.status === "PAUSED" ? "Paused and quiet: nothing of it runs until it is resumed." : "Nothing of it is running now.")
    : "Work of it is still running.";
  return h("section", { class: "panel work-panel", id: "work" },
    h("div", { class: "panel-head" }, h("h2", {}, "In flight"),
      h("span", { class: `drained ${work.drained ? "drained-yes" : "drained-no"}` }, drained)),
    rows.length
      ? h("dl", { class: "work" }, rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))))
      : h("p", { class: "muted" }, "Nothing queued, running or awaited."));
}

function queuedText(q) {
  const why = q.held_by ? ` by a ${q.held_by}` : "";
  const when = q.start_at ? `, may start at ${fmtTime(q.start_at)}` : "";
  return `${q.name} (task ${q.task_id}, attempt ${q.attempt}) not started${why}${when}`;
}

/** The workers page (#/workers). */
export function workersView(items) {
  if (!items.length) return [h("h1", {}, "Workers"), h("p", { class: "empty" }, "No live workers.")];
  const names = (list) => (list === null ? "any" : list.join(", ") || "none");
  const rows = items.map((w) => h("tr", {},
    h("td", { class: "mono" }, w.id),
    h("td", {}, w.kind),
    h("td", {}, w.host),
    h("td", {}, String(w.pid)),
    h("td", { title: fmtTime(w.started_at) }, relative(w.started_at)),
    h("td", { title: fmtTime(w.last_seen) }, relative(w.last_seen)),
    h("td", {}, String(w.running)),
    h("td", {}, names(w.orchestrators)),
    h("td", {}, names(w.activities))));
  return [
    h("h1", {}, "Workers"),
    h("p", { class: "muted" }, `${plural(items.length, "live worker")}; one gone for longer than its lease is not listed.`),
    h("table", { class: "instances", id: "workers-table" },
      h("thead", {}, h("tr", {}, ["Worker", "Kind", "Host", "PID", "Started", "Last seen", "Running", "Orchestrators", "Activities"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows)),
  ];
}

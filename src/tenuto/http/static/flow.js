/* The schedules and limits view (#/schedules): every schedule with its timing, next fire
 * time, pause and latest runs, with Pause…, Resume and Run now; every flow-control limit
 * with its reason and actor, and Remove. A paused schedule is a standing pause: the
 * instance list's banner shows it too. */

import { refresh } from "./state.js";
import { $, badge, enc, fmtTime, h, instanceLink, pauseSummary, plural, relative } from "./format.js";
import { api } from "./api.js";
import { notify, openDialog, showError } from "./actions.js";

let shownKey = "";

export async function refreshFlow() {
  const [schedules, limits] = await Promise.all([
    api("GET", "api/schedules"),
    api("GET", "api/limits"),
  ]);
  const key = JSON.stringify([schedules, limits]);
  if (key === shownKey) return;
  shownKey = key;
  renderSchedules(schedules.items);
  renderLimits(limits.items);
}

function when(s) {
  if (s.every_seconds !== null) return `every ${span(s.every_seconds)}`;
  return s.timezone === "UTC" ? `cron ${s.cron}` : `cron ${s.cron} (${s.timezone})`;
}

function span(seconds) {
  const units = [["d", 86400], ["h", 3600], ["min", 60]];
  const parts = [];
  let rest = seconds;
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n) parts.push(`${n} ${unit}`);
    rest -= n * size;
  }
  if (rest || !parts.length) parts.push(`${+rest.toFixed(3)} s`);
  return parts.join(" ");
}

function act(fn) {
  return () => fn().then(refresh).catch(showError);
}

function pauseDialog(s) {
  openDialog({
    title: "Pause schedule",
    submitLabel: "Pause",
    content: [
      h("p", { class: "target" }, "Pause ", h("strong", {}, s.schedule_id)),
      h("p", { class: "muted" },
        "No run starts while it is paused; fire times that pass are skipped unless " +
        `within ${span(s.catchup_window_seconds)} of the resume.`),
      h("label", {}, "Reason",
        h("input", { name: "reason", maxlength: 4096, placeholder: "e.g. storage migration" })),
    ],
    onSubmit: async (form) => {
      const reason = form.reason.value.trim();
      if (!reason) throw new Error("Give a reason: it is recorded and shown to everyone.");
      const r = await api("POST", `api/schedules/${enc(s.schedule_id)}/pause`, { reason });
      notify(r.changed ? `Paused schedule ${s.schedule_id}.` : `${s.schedule_id} was paused already.`);
      refresh();
    },
  });
}

function renderSchedules(items) {
  $("#schedules-empty").hidden = items.length > 0;
  $("#schedule-rows").replaceChildren(...items.map((s) => {
    const runs = s.last_runs.map((run) =>
      h("div", { class: "run" }, run.status ? badge(run.status) : "purged", " ",
        instanceLink(run.instance_id, fmtTime(run.fire_time))));
    const next = s.next_fires[0];
    const buttons = [
      s.paused
        ? h("button", { type: "button", class: "small", onclick: act(async () => {
          await api("POST", `api/schedules/${enc(s.schedule_id)}/resume`, {});
          notify(`Resumed schedule ${s.schedule_id}.`);
        }) }, "Resume")
        : h("button", { type: "button", class: "small", onclick: () => pauseDialog(s) }, "Pause…"),
      h("button", { type: "button", class: "small", onclick: act(async () => {
        const r = await api("POST", `api/schedules/${enc(s.schedule_id)}/trigger`, {});
        notify(r.instance_id ? `Started ${r.instance_id}.`
          : "Not started: its latest run is unfinished (overlap policy).");
      }) }, "Run now"),
    ];
    return h("tr", { class: s.paused ? "row-paused" : "", "data-schedule": s.schedule_id },
      h("td", {}, h("span", { class: "mono" }, s.schedule_id)),
      h("td", {}, s.orchestrator),
      h("td", {}, when(s), h("div", { class: "muted" }, `overlap ${s.overlap}`)),
      h("td", { class: "next-fire" }, s.paused
        ? pauseSummary({ ...s.pause, source: "client" })
        : next ? [fmtTime(next), h("div", { class: "muted" }, relative(next))] : "ended"),
      h("td", {}, runs.length ? runs : h("span", { class: "muted" }, "none yet")),
      h("td", { class: "col-action" }, buttons));
  }));
  $("#schedules-count").textContent = plural(items.length, "schedule");
}

function limitText(l) {
  if (l.kind === "orchestrator") return `at most ${l.max_concurrent} running`;
  const parts = [];
  if (l.max_concurrent !== null) parts.push(`at most ${l.max_concurrent} at once`);
  if (l.per_second !== null) parts.push(`${l.per_second} starts/s`);
  return parts.join(", ");
}

function renderLimits(items) {
  $("#limits-empty").hidden = items.length > 0;
  $("#limit-rows").replaceChildren(...items.map((l) => {
    const path = `api/limits/${l.kind === "activity" ? "activities" : "orchestrators"}/${enc(l.name)}`;
    return h("tr", { "data-limit": `${l.kind}:${l.name}` },
      h("td", {}, l.kind),
      h("td", {}, h("span", { class: "mono" }, l.name)),
      h("td", {}, limitText(l)),
      h("td", {}, l.reason || h("span", { class: "muted" }, "(no reason given)"),
        h("div", { class: "muted" },
          `by ${l.by || "?"} · since ${fmtTime(l.since)}${l.source === "code" ? " · from code" : ""}`)),
      h("td", { class: "col-action" }, h("button", { type: "button", class: "small",
        onclick: act(async () => {
          await api("DELETE", path);
          notify(`Removed the limit of ${l.kind} ${l.name}.`);
        }) }, "Remove")));
  }));
}

/* One instance (#/instance/<id>): its status, pause, values, sub-orchestrations and
 * history, with the pause periods shaded on a lifetime bar and grouped in the timeline. */

import { LIVE, state } from "./state.js";
import {
  $, badge, clip, enc, fmtDuration, fmtTime, h, heldText, instanceLink, joined, json,
  pauseSummary, plural, relative, sofar, SOURCES,
} from "./format.js";
import { api } from "./api.js";
import { pauseDialog, raiseDialog, resumeDialog, terminateDialog } from "./actions.js";
import { deliverFailureButton, rerunButtons } from "./rerun.js";
import { workPanel } from "./work.js";
import { callNames, callsSection } from "./calls.js";

export async function refreshInstance() {
  const id = state.route.id;
  const seq = ++state.instanceSeq;
  let st;
  try {
    st = await api("GET", `api/instances/${enc(id)}`);
  } catch (err) {
    if (err.status === 404 && seq === state.instanceSeq) {
      state.instanceKey = "";
      $("#instance-view").replaceChildren(backLink(), h("h1", { class: "mono" }, id),
        h("p", { class: "empty" }, "There is no instance with this ID (it may have been purged)."));
      return;
    }
    throw err;
  }
  // What is in flight changes while the status does not (an activity ends while paused).
  const work = LIVE.has(st.runtime_status)
    ? await api("GET", `api/instances/${enc(id)}/work`).catch((err) => {
      if (err.status === 401) throw err;
      return null;
    })
    : null;
  const key = JSON.stringify([st, work]);
  if (seq !== state.instanceSeq || key === state.instanceKey) return;
  const [history, children] = await Promise.all([
    api("GET", `api/instances/${enc(id)}/history`),
    api("GET", `api/instances?${new URLSearchParams({ id_prefix: `${id}:`, limit: "1000" })}`)
      .catch((err) => {
        if (err.status === 401) throw err;
        return { items: [] }; // e.g. an ID too long for a prefix query: the history names them
      }),
  ]);
  if (seq !== state.instanceSeq || state.route.view !== "instance" || state.route.id !== id) return;
  state.instanceKey = key;
  renderInstance(st, history.events, children.items, work);
}

function backLink() {
  return h("a", { href: state.listHash, class: "back" }, "‹ All instances");
}

function renderInstance(st, events, prefixed, work) {
  const one = { kind: "one", id: st.instance_id };
  const live = LIVE.has(st.runtime_status);
  const actions = h("div", { class: "actions" },
    st.runtime_status === "PAUSED"
      ? h("button", { type: "button", class: "primary", onclick: () => resumeDialog(one) }, "Resume…")
      : h("button", { type: "button", disabled: !live, onclick: () => pauseDialog(one) }, "Pause…"),
    h("button", { type: "button", disabled: !live, onclick: () => raiseDialog(one) }, "Raise event…"),
    deliverFailureButton(st),
    h("button", { type: "button", class: "danger-outline", disabled: !live, onclick: () => terminateDialog(one) }, "Terminate…"),
    ...rerunButtons(st),
  );
  const facts = h("dl", { class: "facts" },
    fact("Orchestrator", st.name),
    fact("Created", fmtTime(st.created_at), relative(st.created_at)),
    fact("Updated", fmtTime(st.updated_at), relative(st.updated_at)),
    fact("Completed", st.completed_at ? fmtTime(st.completed_at) : "—"),
    fact("Parent", st.parent_instance_id ? instanceLink(st.parent_instance_id) : "—"),
    st.version ? fact("Version", st.version) : null,
    st.tags ? fact("Tags", Object.entries(st.tags).map(([k, v]) => `${k}=${v}`).join(", ")) : null,
  );
  $("#instance-view").replaceChildren(...[
    backLink(),
    h("div", { class: "instance-head" },
      h("h1", { class: "mono" }, st.instance_id), badge(st.runtime_status), h("span", { class: "spacer" }), actions),
    st.pause ? pausePanel(st.pause) : null,
    st.pause && TENUTO_PAUSES[st.pause.source]
      ? h("p", { class: "pause-todo" }, TENUTO_PAUSES[st.pause.source]) : null,
    st.held_activities && st.held_activities.length
      ? h("div", { class: "held-panel" }, heldText(st.held_activities)) : null,
    workPanel(work),
    facts,
    h("div", { class: "panels" },
      valuePanel("Input", st.input),
      st.failure ? null : valuePanel("Output", st.output, live ? "(not finished)" : null),
      valuePanel("Custom status", st.custom_status),
      st.failure ? failurePanel(st.failure) : null,
    ),
    childrenSection(st, events, prefixed),
    callsSection(st, events, pausePeriods(events, st)),
    historySection(st, events),
  ].filter(Boolean));
}

/** What to do about a pause tenuto made itself. */
const TENUTO_PAUSES = {
  nondeterminism: "Deploy code that matches this history (tenuto replay-check tells), or roll "
    + "back, then resume: it replays with the workers' code.",
  failure: "Fix the cause, then resume to run the call again with a fresh attempt budget, or "
    + "deliver the failure to let the orchestrator's own error handling run.",
};

function fact(label, value, hint) {
  return h("div", {}, h("dt", {}, label), h("dd", { title: hint || null }, value));
}

function pausePanel(p) {
  return h("div", { class: "pause-panel", role: "note" },
    h("span", { class: "pause-icon", "aria-hidden": "true" }, "❚❚"),
    h("div", {}, h("strong", {}, "Paused"), pauseSummary(p)));
}

function valuePanel(title, value, placeholder) {
  const empty = value === null || value === undefined;
  return h("section", { class: "panel" }, h("h2", {}, title),
    empty ? h("p", { class: "muted" }, placeholder || "null") : h("pre", { class: "value" }, json(value)));
}

function failurePanel(f) {
  return h("section", { class: "panel panel-failure" }, h("h2", {}, "Failure"),
    h("p", { class: "failure-text" }, `${f.type}: ${f.message}`),
    f.traceback ? h("pre", { class: "value traceback" }, f.traceback) : null);
}

function childrenSection(st, events, prefixed) {
  // Children are the instances this one created (its history), and those whose derived
  // ID starts with "<id>:" and name it as their parent.
  const byId = new Map();
  for (const item of prefixed) {
    if (item.parent_instance_id === st.instance_id) byId.set(item.instance_id, item);
  }
  for (const e of events) {
    if (e.type === "SubOrchestrationInstanceCreated" && e.instance_id && !byId.has(e.instance_id)) {
      byId.set(e.instance_id, { instance_id: e.instance_id, name: e.name, runtime_status: null });
    }
  }
  if (!byId.size) return null;
  const rows = [...byId.values()].map((c) =>
    h("tr", {},
      h("td", { class: "col-id" }, instanceLink(c.instance_id)),
      h("td", {}, c.name || ""),
      h("td", {}, c.runtime_status ? badge(c.runtime_status) : h("span", { class: "muted" }, "—")),
      h("td", { class: "col-details" }, c.pause ? pauseSummary(c.pause) : null)));
  return h("section", { class: "panel" }, h("h2", {}, `Sub-orchestrations (${byId.size})`),
    h("table", { class: "instances compact" },
      h("thead", {}, h("tr", {}, h("th", {}, "Instance"), h("th", {}, "Orchestrator"), h("th", {}, "Status"), h("th", {}, "Details"))),
      h("tbody", {}, rows)));
}

/** Pause periods: from each ExecutionSuspended to the ExecutionResumed (or end) after it. */
function pausePeriods(events, st) {
  const periods = [];
  let open = null;
  for (const e of events) {
    if (e.type === "ExecutionSuspended" && !open) {
      open = { start: e, end: null, first: e.sequence, last: null };
    } else if (open && ["ExecutionResumed", "ExecutionTerminated", "ExecutionCompleted"].includes(e.type)) {
      open.end = e;
      open.last = e.type === "ExecutionResumed" ? e.sequence : e.sequence - 1;
      periods.push(open);
      open = null;
    }
  }
  if (open) {
    open.last = Infinity;
    periods.push(open);
  }
  for (const p of periods) {
    p.from = new Date(p.start.timestamp).getTime();
    p.to = p.end ? new Date(p.end.timestamp).getTime() : (LIVE.has(st.runtime_status) ? Date.now() : new Date(st.updated_at).getTime());
  }
  return periods;
}

/** What a pause period was: reason, who paused and resumed it, when, how long. */
function periodLabel(p) {
  const bits = [p.start.reason || "(no reason given)"];
  if (p.start.by) bits.push(`paused by ${p.start.by}`);
  if (SOURCES[p.start.source]) bits.push(SOURCES[p.start.source]);
  if (p.end && p.end.type === "ExecutionResumed") {
    bits.push(`resumed by ${p.end.by || "?"}${p.end.reason ? ` (${p.end.reason})` : ""}`);
    bits.push(`${fmtTime(p.start.timestamp)} → ${fmtTime(p.end.timestamp)}, ${fmtDuration(p.to - p.from)}`);
  } else if (p.end) {
    bits.push(`until ${p.end.type === "ExecutionTerminated" ? "terminated" : "finished"} ${fmtTime(p.end.timestamp)}`);
  } else {
    bits.push(["since ", fmtTime(p.start.timestamp), ", ", sofar(p.start.timestamp)]);
    if (p.start.resume_at) bits.push(`resumes ${fmtTime(p.start.resume_at)}`);
  }
  return joined(bits);
}

function historySection(st, events) {
  const periods = pausePeriods(events, st);
  const markers = events.filter((e) => e.type === "OrchestratorStarted").length;
  const toggle = h("label", { class: "check muted" },
    h("input", {
      type: "checkbox", checked: state.showMarkers,
      onchange: (ev) => {
        state.showMarkers = ev.target.checked;
        $("#timeline").replaceWith(timeline(events, periods));
      },
    }), ` Show episode markers (${markers})`);
  return h("section", { class: "panel" },
    h("div", { class: "panel-head" }, h("h2", {}, `History (${events.length} events)`), toggle),
    lifetimeBar(st, events, periods),
    timeline(events, periods));
}

/** A bar from the first event to now (or the end), with the pause periods shaded. */
function lifetimeBar(st, events, periods) {
  if (!events.length) return null;
  const start = new Date(events[0].timestamp).getTime();
  const end = Math.max(
    LIVE.has(st.runtime_status) ? Date.now() : new Date(st.completed_at || st.updated_at).getTime(),
    new Date(events[events.length - 1].timestamp).getTime(),
    start + 1,
  );
  const span = end - start;
  const bar = h("div", { class: "lifetime", role: "img",
    "aria-label": `${plural(periods.length, "pause period")} in ${fmtDuration(span)}` });
  for (const p of periods) {
    const seg = h("div", { class: "lifetime-pause", title: h("span", {}, periodLabel(p)).textContent });
    seg.style.left = `${((p.from - start) / span) * 100}%`;
    seg.style.width = `max(3px, ${((p.to - p.from) / span) * 100}%)`;
    bar.append(seg);
  }
  return h("div", { class: "lifetime-wrap" },
    h("div", { class: "lifetime-ends muted" }, h("span", {}, fmtTime(events[0].timestamp)),
      h("span", {}, LIVE.has(st.runtime_status) ? sofar(events[0].timestamp) : fmtDuration(span)),
      h("span", {}, LIVE.has(st.runtime_status) ? "now" : fmtTime(new Date(end).toISOString()))),
    bar,
    h("div", { class: "legend muted" }, h("span", { class: "swatch swatch-run" }), "active ",
      h("span", { class: "swatch swatch-pause" }, ""), `paused (${periods.length})`));
}

function timeline(events, periods) {
  const list = h("ol", { class: "timeline", id: "timeline" });
  const names = callNames(events);
  const start = events.length ? new Date(events[0].timestamp).getTime() : 0;
  let group = null;
  for (const e of events) {
    const period = periods.find((p) => e.sequence >= p.first && e.sequence <= p.last);
    if (period && (!group || group.period !== period)) {
      const body = h("ol", { class: "timeline" });
      const li = h("li", { class: "pause-period" },
        h("div", { class: "pause-period-label" }, h("span", { class: "pause-icon" }, "❚❚"), " Paused: ", periodLabel(period)),
        body);
      list.append(li);
      group = { period, body };
    } else if (!period) {
      group = null;
    }
    if (e.type === "OrchestratorStarted" && !state.showMarkers) continue;
    // A result shows the name of the call it ends, which only its TaskScheduled holds.
    const named = e.name === undefined && names.has(e.task_id) && e.type in RESULTS
      ? { ...e, name: names.get(e.task_id) } : e;
    (group ? group.body : list).append(eventItem(named, start));
  }
  return list;
}

const HIDDEN_FIELDS = new Set(["sequence", "type", "timestamp"]);
const RESULTS = {
  TaskCompleted: 1, TaskFailed: 1, SubOrchestrationInstanceCompleted: 1, SubOrchestrationInstanceFailed: 1,
};

function eventItem(e, start) {
  const offset = new Date(e.timestamp).getTime() - start;
  const fields = Object.entries(e).filter(([k, v]) => !HIDDEN_FIELDS.has(k) && v !== null && v !== undefined);
  return h("li", { class: `event event-${kind(e.type)}`, "data-type": e.type },
    h("span", { class: "event-time mono", title: fmtTime(e.timestamp, true) }, `+${fmtDuration(offset)}`),
    h("span", { class: "event-type" }, e.type),
    h("span", { class: "event-fields" }, fields.map(([k, v]) => field(k, v))));
}

function kind(type) {
  if (type.startsWith("Execution") || type === "ContinuedAsNew") return "lifecycle";
  if (type.startsWith("Task")) return "task";
  if (type.startsWith("Timer")) return "timer";
  if (type.startsWith("SubOrchestration")) return "sub";
  if (type === "EventRaised") return "event";
  return "other";
}

function field(key, value) {
  let shown;
  if (key === "instance_id" || key === "parent_instance_id") shown = instanceLink(String(value));
  else if (key === "failure" && value && typeof value === "object" && value.type) {
    const text = `${value.type}: ${value.message}`;
    shown = value.traceback
      ? h("details", { class: "long" }, h("summary", { class: "failure-text" }, text),
        h("pre", { class: "value traceback" }, value.traceback))
      : h("span", { class: "failure-text" }, text);
  } else {
    const text = typeof value === "string" ? value : json(value, 0);
    shown = text.length > 200
      ? h("details", { class: "long" }, h("summary", {}, clip(text, 120)), h("pre", { class: "value" }, json(value)))
      : h("span", { class: "field-value" }, text);
  }
  return h("span", { class: "field" }, h("span", { class: "field-key" }, `${key}`), shown);
}

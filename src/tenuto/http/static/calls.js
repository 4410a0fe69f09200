/* The history grouped per call (#/instance/<id>): each activity and sub-orchestration
 * call with its name, attempts, start, duration and result, and a bar per call on the
 * instance's time axis (a compact Gantt chart) with the pause periods as bands. */

import { LIVE } from "./state.js";
import { fmtDuration, fmtTime, h, instanceLink, plural } from "./format.js";

const STARTS = {
  TaskScheduled: "activity",
  SubOrchestrationInstanceCreated: "sub-orchestration",
};
const ENDS = {
  TaskCompleted: "completed",
  TaskFailed: "failed",
  SubOrchestrationInstanceCompleted: "completed",
  SubOrchestrationInstanceFailed: "failed",
};

/** The calls of a history, in the order they were made: {taskId, name, kind, start,
 * end, outcome, attempts, child}. A call without its end is still open. */
export function callsOf(events) {
  const calls = new Map();
  for (const e of events) {
    if (STARTS[e.type] && e.task_id !== undefined) {
      calls.set(e.task_id, {
        taskId: e.task_id, name: e.name, kind: STARTS[e.type], child: e.instance_id || null,
        start: new Date(e.timestamp).getTime(), end: null, outcome: null, attempts: null,
      });
    } else if (ENDS[e.type] && calls.has(e.task_id)) {
      const call = calls.get(e.task_id);
      call.end = new Date(e.timestamp).getTime();
      call.outcome = ENDS[e.type];
      if (e.attempts !== undefined) call.attempts = e.attempts;
    }
  }
  return [...calls.values()];
}

/** The name of the call each task id belongs to (for TaskCompleted rows). */
export function callNames(events) {
  return new Map(callsOf(events).map((c) => [c.taskId, c.name]));
}

export function callsSection(st, events, periods) {
  const calls = callsOf(events);
  if (!calls.length || !events.length) return null;
  const first = new Date(events[0].timestamp).getTime();
  const now = LIVE.has(st.runtime_status) ? Date.now() : new Date(st.completed_at || st.updated_at).getTime();
  const last = Math.max(now, ...calls.map((c) => c.end || now), first + 1);
  const span = last - first;
  const pct = (t) => `${((t - first) / span) * 100}%`;
  const rows = calls.map((c) => {
    const end = c.end || now;
    const bar = h("div", { class: "gantt" });
    for (const p of periods) {
      const band = h("div", { class: "gantt-pause", title: "paused" });
      band.style.left = pct(p.from);
      band.style.width = `max(2px, ${((p.to - p.from) / span) * 100}%)`;
      bar.append(band);
    }
    const run = h("div", { class: `gantt-call gantt-${c.outcome || "open"}`,
      title: `${c.name}: ${fmtTime(new Date(c.start).toISOString())}, ${fmtDuration(end - c.start)}` });
    run.style.left = pct(c.start);
    run.style.width = `max(3px, ${((end - c.start) / span) * 100}%)`;
    bar.append(run);
    const result = c.outcome || (LIVE.has(st.runtime_status) ? "not finished" : "—");
    return h("tr", { "data-task": String(c.taskId) },
      h("td", {}, c.child ? [c.name, " ", h("span", { class: "muted" }, "→ "), instanceLink(c.child)] : c.name),
      h("td", {}, c.kind),
      h("td", {}, c.attempts === null ? "—" : String(c.attempts)),
      h("td", { class: "mono" }, `+${fmtDuration(c.start - first)}`),
      h("td", {}, c.end ? fmtDuration(c.end - c.start) : `${fmtDuration(now - c.start)} so far`),
      h("td", { class: `call-${c.outcome || "open"}` }, result),
      h("td", { class: "col-gantt" }, bar));
  });
  return h("section", { class: "panel", id: "calls" },
    h("h2", {}, `Calls (${plural(calls.length, "call")}, ${plural(periods.length, "pause")})`),
    h("table", { class: "instances compact calls" },
      h("thead", {}, h("tr", {}, ["Call", "Kind", "Attempts", "Start", "Duration", "Result", "Timeline"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows)));
}

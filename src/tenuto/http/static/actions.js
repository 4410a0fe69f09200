/* Notices, the action dialogs (pause, resume, terminate, raise an event) and running an
 * action on one instance, a selection or every instance matching a filter. */

import { refresh } from "./state.js";
import { $, enc, h, localToIso, plural } from "./format.js";
import { api, ApiError, describeFilter, filterBody } from "./api.js";

export function notify(text, kind = "ok") {
  const notice = $("#notice");
  notice.className = `notice notice-${kind}`;
  $("#notice-text").textContent = text;
  notice.hidden = false;
}

/** A modal form: `content` are its fields; `onSubmit(form)` may throw to show an error. */
export function openDialog({ title, content, submitLabel, danger = false, onSubmit }) {
  const modal = $("#modal");
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: danger ? "danger" : "primary" }, submitLabel);
  const form = h(
    "form",
    { method: "dialog", novalidate: true },
    h("h2", { id: "modal-title" }, title),
    content,
    error,
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { type: "button", onclick: () => modal.close() }, "Cancel"),
      submit,
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      await onSubmit(form);
      if (modal.open) modal.close();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  modal.replaceChildren(form);
  modal.showModal();
  const first = form.querySelector("input, textarea");
  if (first) first.focus();
  return { form, submit };
}

/* ---------------------------------------------------------------- actions */

// A target is {kind: "one", id}, {kind: "selection", ids} or {kind: "filter", filter}.

function targetText(target) {
  if (target.kind === "one") return target.id;
  if (target.kind === "selection") return plural(target.ids.length, "selected instance");
  const filter = describeFilter(target.filter);
  return filter ? `every instance matching: ${filter}` : "every instance (no filter is set)";
}

/** Run `call(id)` for every id (four at a time); count what changed and what failed. */
async function forEachId(ids, call) {
  const result = { changed: 0, unchanged: 0, failed: [] };
  const queue = [...ids];
  async function work() {
    while (queue.length) {
      const id = queue.shift();
      try {
        const changed = await call(id);
        if (changed === false) result.unchanged += 1;
        else result.changed += 1;
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) throw err;
        result.failed.push(`${id}: ${err.message}`);
      }
    }
  }
  await Promise.all([work(), work(), work(), work()]);
  return result;
}

function report(verb, total, result, unchangedWhy) {
  const parts = [`${verb} ${result.changed} of ${plural(total, "instance")}.`];
  if (result.unchanged) parts.push(`${result.unchanged} unchanged (${unchangedWhy}).`);
  if (result.failed.length) {
    const shown = result.failed.slice(0, 3).join("; ");
    const more = result.failed.length > 3 ? ` and ${result.failed.length - 3} more` : "";
    parts.push(`${result.failed.length} failed: ${shown}${more}.`);
  }
  notify(parts.join(" "), result.failed.length ? "error" : "ok");
}

async function runOn(target, verb, unchangedWhy, call) {
  if (target.kind === "one") {
    const changed = await call(target.id);
    notify(changed === false ? `${target.id} was ${unchangedWhy}.` : `${verb} ${target.id}.`);
  } else {
    report(verb, target.ids.length, await forEachId(target.ids, call), unchangedWhy);
  }
  refresh();
}

/** How many instances a bulk action on `filter` changes, filled in once counted
 * (POST /api/bulk/preview changes nothing). */
function bulkCount(action, filter) {
  const line = h("p", { class: "bulk-count", "aria-live": "polite" }, "Counting…");
  api("POST", "api/bulk/preview", { action, ...filterBody(filter), sample: 3 })
    .then((r) => {
      const verb = action === "pause" ? "pauses" : "resumes";
      const first = r.sample.length ? ` (first: ${r.sample.join(", ")})` : "";
      line.textContent = `This ${verb} ${plural(r.count, "instance")} now${first}.`;
    })
    .catch((err) => { line.textContent = `Could not count them: ${err.message}`; });
  return line;
}

export function pauseDialog(target) {
  openDialog({
    title: target.kind === "filter" ? "Pause all matching" : "Pause",
    submitLabel: "Pause",
    content: [
      h("p", { class: "target" }, "Pause ", h("strong", {}, targetText(target))),
      target.kind === "filter" ? bulkCount("pause", target.filter) : null,
      target.kind === "filter"
        ? h("p", { class: "muted" }, "Only PENDING and RUNNING instances change.")
        : null,
      h("label", {}, "Reason",
        h("input", { name: "reason", maxlength: 4096, placeholder: "e.g. business hours" })),
      h("label", {}, "Resume automatically at (optional)",
        h("input", { name: "resume_at", type: "datetime-local" })),
    ],
    onSubmit: async (form) => {
      const reason = form.reason.value.trim();
      if (!reason) throw new Error("Give a reason: it is recorded and shown to everyone.");
      const body = { reason };
      if (form.resume_at.value) {
        body.resume_at = localToIso(form.resume_at.value);
        if (!body.resume_at || new Date(body.resume_at) <= new Date()) {
          throw new Error("The resume time must be in the future.");
        }
      }
      if (target.kind === "filter") {
        const r = await api("POST", "api/bulk/pause", { ...filterBody(target.filter), ...body });
        notify(`Paused ${plural(r.count, "instance")} matching the filter.`);
        refresh();
        return;
      }
      await runOn(target, "Paused", "already paused", async (id) =>
        (await api("POST", `api/instances/${enc(id)}/pause`, body)).changed);
    },
  });
}

/** Resume one instance or a selection, with an optional reason (recorded in history). */
export function resumeDialog(target) {
  openDialog({
    title: "Resume",
    submitLabel: "Resume",
    content: [
      h("p", { class: "target" }, "Resume ", h("strong", {}, targetText(target))),
      h("p", { class: "muted" }, "It continues exactly where it stopped."),
      h("label", {}, "Reason (optional)",
        h("input", { name: "reason", maxlength: 4096, placeholder: "e.g. maintenance done" })),
    ],
    onSubmit: async (form) => {
      const reason = form.reason.value.trim();
      const body = reason ? { reason } : {};
      await runOn(target, "Resumed", "not paused", async (id) =>
        (await api("POST", `api/instances/${enc(id)}/resume`, body)).changed);
    },
  });
}

export function resumeAllDialog(filter) {
  openDialog({
    title: "Resume all matching",
    submitLabel: "Resume",
    content: [
      h("p", { class: "target" }, "Resume ", h("strong", {}, targetText({ kind: "filter", filter }))),
      bulkCount("resume", filter),
      h("p", { class: "muted" }, "Only PAUSED instances change."),
      h("label", {}, "Reason (optional)", h("input", { name: "reason", maxlength: 4096 })),
    ],
    onSubmit: async (form) => {
      const body = { ...filterBody(filter) };
      if (form.reason.value.trim()) body.reason = form.reason.value.trim();
      const r = await api("POST", "api/bulk/resume", body);
      notify(`Resumed ${plural(r.count, "instance")} matching the filter.`);
      refresh();
    },
  });
}

export function terminateDialog(target) {
  openDialog({
    title: "Terminate",
    submitLabel: "Terminate",
    danger: true,
    content: [
      h("p", { class: "target" }, "Terminate ", h("strong", {}, targetText(target)), "?"),
      h("p", { class: "muted" }, target.kind === "one"
        ? "It ends TERMINATED, with its running sub-orchestrations. This cannot be undone."
        : "They end TERMINATED, with their running sub-orchestrations. This cannot be undone."),
      h("label", {}, "Reason (optional)", h("input", { name: "reason", maxlength: 4096 })),
    ],
    onSubmit: async (form) => {
      const body = {};
      if (form.reason.value.trim()) body.reason = form.reason.value.trim();
      await runOn(target, "Terminated", "already finished", async (id) => {
        await api("POST", `api/instances/${enc(id)}/terminate`, body);
        return true;
      });
    },
  });
}

export function raiseDialog(target) {
  const check = h("p", { class: "json-check muted" }, "Empty data sends null.");
  const { form, submit } = openDialog({
    title: "Raise an event",
    submitLabel: "Send event",
    content: [
      h("p", { class: "target" }, "Send to ", h("strong", {}, targetText(target))),
      h("label", {}, "Event name", h("input", { name: "event", maxlength: 256 })),
      h("label", {}, "Data (JSON)",
        h("textarea", { name: "data", rows: 6, spellcheck: "false", placeholder: '{"approved": true}' })),
      check,
    ],
    onSubmit: async (f) => {
      const name = f.event.value.trim();
      if (!name) throw new Error("Give the event a name.");
      const data = parseData(f.data.value); // throws on invalid JSON
      await runOn(target, "Sent the event to", "unchanged", async (id) => {
        await api("POST", `api/instances/${enc(id)}/events/${enc(name)}`, data);
        return true;
      });
    },
  });
  form.data.addEventListener("input", () => {
    try {
      parseData(form.data.value);
      check.className = "json-check ok";
      check.textContent = form.data.value.trim() ? "Valid JSON." : "Empty data sends null.";
      submit.disabled = false;
    } catch (err) {
      check.className = "json-check bad";
      check.textContent = err.message;
      submit.disabled = true;
    }
  });
}

function parseData(text) {
  if (!text.trim()) return null;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`The data is not valid JSON: ${err.message}`);
  }
}

export function showError(err) {
  if (err instanceof ApiError && err.status === 401) return;
  notify(err.message, "error");
}

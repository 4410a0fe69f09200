/* The tenuto dashboard: plain JavaScript, no build step, no dependencies.
 *
 * Everything comes from the REST API under /api/. Every value from the server or typed by
 * a user is put on the page as text (h() appends strings as Text nodes); nothing here
 * uses innerHTML. Routes live in the URL hash:
 *   #/?status=PAUSED,RUNNING&name=backup&prefix=vol-&from=...&to=...   the instance list
 *   #/instance/<id>                                                      one instance
 */
"use strict";

const STATUSES = ["PENDING", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "TERMINATED"];
const LIVE = new Set(["PENDING", "RUNNING", "PAUSED"]);
const POLL_MS = 2500;
const TOKEN_KEY = "tenuto.token";
const MAX_SELECT = 10000;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  locked: false, // true after a 401, until a token is entered
  route: { view: "list" },
  filters: emptyFilters(),
  filterKey: null,
  limit: 50,
  cursors: [null], // the cursor of every page visited; the last one is shown
  nextCursor: null,
  selection: new Set(),
  listSeq: 0,
  listKey: "",
  rows: new Map(), // instance id -> {json, tr}: the rows on screen
  instanceSeq: 0,
  instanceKey: "",
  showMarkers: false,
  listHash: "#/",
};

/* ---------------------------------------------------------------- small helpers */

const $ = (selector, root = document) => root.querySelector(selector);

/** An element with attributes and children; strings become Text nodes, never markup. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (["checked", "disabled", "hidden", "value", "required", "open"].includes(key)) {
      el[key] = value;
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const enc = encodeURIComponent;
const pad = (n, width = 2) => String(n).padStart(width, "0");
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function emptyFilters() {
  return { status: [], name: "", prefix: "", from: "", to: "" };
}

function fmtTime(iso, withMs = false) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${date} ${time}${withMs ? "." + pad(d.getMilliseconds(), 3) : ""}`;
}

function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** "5 min ago" or "in 2 h". */
function relative(iso) {
  if (!iso) return "";
  const ms = new Date(iso).getTime() - Date.now();
  if (Math.abs(ms) < 2000) return "just now";
  return ms < 0 ? `${fmtDuration(-ms)} ago` : `in ${fmtDuration(ms)}`;
}

/** A relative time ("5 min ago") that stays current: the clock updates it. */
function rel(iso) {
  return h("span", { class: "clock", "data-at": iso }, relative(iso));
}

/** How long since `iso` ("3 min 05 s so far"), kept current by the clock. */
function sofar(iso) {
  return h("span", { class: "clock", "data-since": iso },
    `${fmtDuration(Date.now() - new Date(iso).getTime())} so far`);
}

function updateClocks() {
  for (const el of document.querySelectorAll(".clock")) {
    if (el.dataset.at) el.textContent = relative(el.dataset.at);
    else el.textContent = `${fmtDuration(Date.now() - new Date(el.dataset.since).getTime())} so far`;
  }
}

/** A datetime-local value (local time) as an ISO 8601 instant, or null. */
function localToIso(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

function json(value, indent = 2) {
  return value === undefined ? "" : JSON.stringify(value, null, indent);
}

function badge(status) {
  return h("span", { class: `badge badge-${status.toLowerCase()}` }, status);
}

function instanceLink(id, text) {
  return h("a", { href: `#/instance/${enc(id)}`, class: "mono" }, text ?? id);
}

/* ---------------------------------------------------------------- the API */

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = state.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network", "Cannot reach the tenuto server.");
  }
  if (response.status === 401) {
    // An answer to a token that has been replaced since says nothing about the new one.
    if (token === state.token) askForToken(Boolean(token));
    throw new ApiError(401, "unauthorized", "A valid token is needed.");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const message = (data && data.message) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, (data && data.error) || "error", message);
  }
  return data;
}

/** Query parameters (for GET /api/instances) of a filter. */
function filterParams(f) {
  const params = new URLSearchParams();
  for (const s of f.status) params.append("status", s);
  if (f.name) params.set("name", f.name);
  if (f.prefix) params.set("id_prefix", f.prefix);
  if (localToIso(f.from)) params.set("created_from", localToIso(f.from));
  if (localToIso(f.to)) params.set("created_to", localToIso(f.to));
  return params;
}

/** The JSON filter of the bulk endpoints. */
function filterBody(f) {
  const body = {};
  if (f.status.length) body.status = [...f.status];
  if (f.name) body.name = f.name;
  if (f.prefix) body.id_prefix = f.prefix;
  if (localToIso(f.from)) body.created_from = localToIso(f.from);
  if (localToIso(f.to)) body.created_to = localToIso(f.to);
  return body;
}

function describeFilter(f) {
  const parts = [];
  if (f.status.length) parts.push(`status ${f.status.join(" or ")}`);
  if (f.name) parts.push(`orchestrator “${f.name}”`);
  if (f.prefix) parts.push(`ID starting with “${f.prefix}”`);
  if (f.from) parts.push(`created from ${fmtTime(localToIso(f.from))}`);
  if (f.to) parts.push(`created to ${fmtTime(localToIso(f.to))}`);
  return parts.join(", ");
}

/* ---------------------------------------------------------------- auth */

function askForToken(rejected) {
  if (state.locked && !rejected) return; // already asking (several requests got 401)
  state.locked = true;
  if (rejected) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
  }
  // No data may stay on screen without a valid token.
  $("#main").hidden = true;
  $("#rows").replaceChildren();
  state.rows = new Map();
  $("#counts").replaceChildren();
  $("#instance-view").replaceChildren();
  state.listKey = state.instanceKey = "";
  const modal = $("#modal");
  if (modal.open) modal.close();
  const dialog = $("#auth");
  const error = $("#auth-error");
  error.textContent = rejected ? "That token was not accepted. Try again." : "";
  error.hidden = !rejected;
  if (!dialog.open) {
    dialog.showModal();
    $("#auth-form").token.value = "";
    $("#auth-form").token.focus();
  }
  $("#forget-token").hidden = true;
}

function setupAuth() {
  const dialog = $("#auth");
  dialog.addEventListener("cancel", (ev) => ev.preventDefault()); // no data without a token
  $("#auth-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = ev.target.token.value.trim();
    if (!token) return;
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    state.locked = false;
    dialog.close();
    refresh();
  });
  $("#forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    askForToken(false);
  });
}

/* ---------------------------------------------------------------- notices and dialogs */

function notify(text, kind = "ok") {
  const notice = $("#notice");
  notice.className = `notice notice-${kind}`;
  $("#notice-text").textContent = text;
  notice.hidden = false;
}

/** A modal form: `content` are its fields; `onSubmit(form)` may throw to show an error. */
function openDialog({ title, content, submitLabel, danger = false, onSubmit }) {
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

function pauseDialog(target) {
  openDialog({
    title: target.kind === "filter" ? "Pause all matching" : "Pause",
    submitLabel: "Pause",
    content: [
      h("p", { class: "target" }, "Pause ", h("strong", {}, targetText(target))),
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

function resumeNow(target) {
  return runOn(target, "Resumed", "not paused", async (id) =>
    (await api("POST", `api/instances/${enc(id)}/resume`, {})).changed,
  ).catch(showError);
}

function resumeAllDialog(filter) {
  openDialog({
    title: "Resume all matching",
    submitLabel: "Resume",
    content: [
      h("p", { class: "target" }, "Resume ", h("strong", {}, targetText({ kind: "filter", filter }))),
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

function terminateDialog(target) {
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

function raiseDialog(target) {
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

function showError(err) {
  if (err instanceof ApiError && err.status === 401) return;
  notify(err.message, "error");
}

/* ---------------------------------------------------------------- routing */

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const match = hash.match(/^\/instance\/(.+)$/);
  if (match) {
    try {
      return { view: "instance", id: decodeURIComponent(match[1]) };
    } catch (err) {
      return { view: "instance", id: match[1] };
    }
  }
  const q = new URLSearchParams(hash.split("?")[1] || "");
  const statuses = (q.get("status") || "").split(",").filter((s) => STATUSES.includes(s));
  const filters = {
    status: statuses,
    name: q.get("name") || "",
    prefix: q.get("prefix") || "",
    from: q.get("from") || "",
    to: q.get("to") || "",
  };
  const limit = Number(q.get("limit")) || 50;
  return { view: "list", filters, limit };
}

function listHash(filters, limit) {
  const q = new URLSearchParams();
  if (filters.status.length) q.set("status", filters.status.join(","));
  for (const key of ["name", "prefix", "from", "to"]) if (filters[key]) q.set(key, filters[key]);
  if (limit !== 50) q.set("limit", String(limit));
  const text = q.toString();
  return text ? `#/?${text}` : "#/";
}

function onRoute() {
  const route = parseRoute();
  state.route = route;
  $("#list-view").hidden = route.view !== "list";
  $("#instance-view").hidden = route.view !== "instance";
  if (route.view === "list") {
    state.listHash = location.hash || "#/";
    applyFilters(route.filters, route.limit);
    document.title = "tenuto · instances";
  } else {
    state.instanceKey = "";
    $("#instance-view").replaceChildren(h("p", { class: "muted" }, "Loading…"));
    document.title = `tenuto · ${route.id}`;
  }
  refresh();
}

/* ---------------------------------------------------------------- the list */

/** The filter form's inputs, by filter key. */
const FILTER_INPUTS = { name: "orchestrator", prefix: "prefix", from: "from", to: "to" };

function applyFilters(filters, limit) {
  const key = JSON.stringify([filters, limit]);
  if (key !== state.filterKey) {
    // New filters: back to the newest page, and a selection made under other filters goes.
    state.filterKey = key;
    state.filters = filters;
    state.limit = [25, 50, 100, 250].includes(limit) ? limit : 50;
    state.cursors = [null];
    state.selection.clear();
    state.listKey = "";
  }
  const form = $("#filters");
  for (const [key, input] of Object.entries(FILTER_INPUTS)) {
    if (document.activeElement !== form[input]) form[input].value = filters[key];
  }
  for (const box of form.querySelectorAll("input[name=status]")) {
    box.checked = filters.status.includes(box.value);
  }
  $("#page-size").value = String(state.limit);
  updateSelectionUi();
}

function readFilters() {
  const form = $("#filters");
  return {
    status: [...form.querySelectorAll("input[name=status]:checked")].map((b) => b.value),
    name: form.orchestrator.value.trim(),
    prefix: form.prefix.value.trim(),
    from: form.from.value,
    to: form.to.value,
  };
}

function filtersChanged() {
  const hash = listHash(readFilters(), Number($("#page-size").value));
  if (hash !== location.hash) location.hash = hash; // onRoute applies it
}

function setupList() {
  const statusBox = $("#status-filter");
  for (const s of STATUSES) {
    statusBox.append(
      h("label", { class: `chip chip-${s.toLowerCase()}` },
        h("input", { type: "checkbox", name: "status", value: s }), s),
    );
  }
  const form = $("#filters");
  form.addEventListener("submit", (ev) => ev.preventDefault());
  let typing = null;
  form.addEventListener("input", (ev) => {
    clearTimeout(typing);
    const delay = ev.target.type === "search" ? 350 : 0;
    typing = setTimeout(filtersChanged, delay);
  });
  $("#clear-filters").addEventListener("click", () => {
    location.hash = listHash(emptyFilters(), state.limit);
  });
  $("#page-size").addEventListener("change", filtersChanged);

  $("#first-page").addEventListener("click", () => goPage([null]));
  $("#prev-page").addEventListener("click", () => goPage(state.cursors.slice(0, -1)));
  $("#next-page").addEventListener("click", () => goPage([...state.cursors, state.nextCursor]));

  $("#select-page").addEventListener("change", (ev) => {
    for (const box of document.querySelectorAll("#rows input[type=checkbox]")) {
      if (ev.target.checked) state.selection.add(box.value);
      else state.selection.delete(box.value);
    }
    updateSelectionUi();
  });
  $("#rows").addEventListener("change", (ev) => {
    if (ev.target.type !== "checkbox") return;
    if (ev.target.checked) state.selection.add(ev.target.value);
    else state.selection.delete(ev.target.value);
    updateSelectionUi();
  });
  $("#clear-selection").addEventListener("click", () => {
    state.selection.clear();
    updateSelectionUi();
  });

  const selected = () => ({ kind: "selection", ids: [...state.selection] });
  const actions = {
    pause: () => pauseDialog(selected()),
    resume: () => resumeNow(selected()),
    terminate: () => terminateDialog(selected()),
    raise: () => raiseDialog(selected()),
  };
  for (const button of document.querySelectorAll("[data-selection]")) {
    button.addEventListener("click", actions[button.dataset.selection]);
  }
  $("#bulk-pause").addEventListener("click", () =>
    pauseDialog({ kind: "filter", filter: state.filters }));
  $("#bulk-resume").addEventListener("click", () => resumeAllDialog(state.filters));
  $("#select-matching").addEventListener("click", () => selectMatching().catch(showError));
}

function goPage(cursors) {
  state.cursors = cursors.length ? cursors : [null];
  state.listKey = "";
  refresh();
}

/** Select every instance matching the filter (all pages, up to MAX_SELECT). */
async function selectMatching() {
  const params = filterParams(state.filters);
  params.set("limit", "1000");
  let cursor = null;
  let found = 0;
  do {
    if (cursor) params.set("cursor", cursor);
    const page = await api("GET", `api/instances?${params}`);
    for (const item of page.items) state.selection.add(item.instance_id);
    found += page.items.length;
    cursor = page.next_cursor;
  } while (cursor && found < MAX_SELECT);
  updateSelectionUi();
  const capped = cursor ? ` (stopped at ${MAX_SELECT}; narrow the filter for the rest)` : "";
  notify(`Selected ${plural(found, "instance")} matching the filter${capped}.`);
}

function updateSelectionUi() {
  const n = state.selection.size;
  $("#selection-count").textContent = n ? `${n} selected` : "No selection";
  for (const button of document.querySelectorAll("[data-selection]")) button.disabled = !n;
  $("#clear-selection").hidden = !n;
  const boxes = [...document.querySelectorAll("#rows input[type=checkbox]")];
  for (const box of boxes) box.checked = state.selection.has(box.value);
  const all = $("#select-page");
  all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
  all.indeterminate = !all.checked && boxes.some((b) => b.checked);
}

async function refreshList() {
  const seq = ++state.listSeq;
  const params = filterParams(state.filters);
  params.set("limit", String(state.limit));
  const cursor = state.cursors[state.cursors.length - 1];
  if (cursor) params.set("cursor", cursor);
  let stats;
  let page;
  let standing;
  try {
    [stats, page, standing] = await Promise.all([
      api("GET", "api/stats"),
      api("GET", `api/instances?${params}`),
      api("GET", "api/standing-pauses").catch((err) => {
        if (err.status === 401) throw err;
        return { items: [] }; // a server without standing pauses
      }),
    ]);
  } catch (err) {
    if (err.code === "invalid_cursor" && seq === state.listSeq) return goPage([null]);
    throw err;
  }
  if (seq !== state.listSeq || state.route.view !== "list") return; // a newer request won
  // Re-render only when something changed (the clock keeps relative times current).
  const key = JSON.stringify([stats, page, standing]);
  if (key === state.listKey) return;
  state.listKey = key;
  renderStanding(standing.items);
  renderCounts(stats.counts);
  renderRows(page);
}

/** Standing pauses: orchestrator types and activity types held everywhere. */
function renderStanding(items) {
  const box = $("#standing");
  box.hidden = !items.length;
  box.replaceChildren(...items.map((sp) => {
    const path = `api/${sp.kind === "activity" ? "activities" : "orchestrators"}/${enc(sp.name)}/resume`;
    const what = `${sp.kind === "activity" ? "activity" : "orchestrator"} ${sp.name}`;
    const resume = async () => {
      const r = await api("POST", path, {});
      notify(r.changed ? `Resumed ${what}.` : `The ${what} was not paused.`);
      refresh();
    };
    return h("div", { class: "standing-item", "data-kind": sp.kind, "data-name": sp.name },
      h("span", { class: "pause-icon", "aria-hidden": "true" }, "❚❚"),
      h("div", { class: "standing-text" },
        h("strong", {}, `${sp.kind === "activity" ? "Activity" : "Orchestrator"} `),
        h("span", { class: "mono" }, sp.name),
        h("span", { class: "muted" }, sp.kind === "activity"
          ? " is held in every orchestration"
          : " is paused: its instances pause, new ones are held"),
        pauseSummary({ ...sp, source: "client" })),
      h("button", { type: "button", class: "small", onclick: () => resume().catch(showError) },
        "Resume"));
  }));
}

function renderCounts(counts) {
  const total = STATUSES.reduce((sum, s) => sum + (counts[s] || 0), 0);
  const only = state.filters.status.length === 1 ? state.filters.status[0] : null;
  const card = (label, value, status) => {
    const active = status ? only === status : !state.filters.status.length;
    return h("button", {
      type: "button",
      class: `count count-${(status || "all").toLowerCase()}${active ? " active" : ""}${value ? " nonzero" : ""}`,
      title: status ? `Show only ${status} instances` : "Show every status",
      "data-status": status || "ALL",
      onclick: () => {
        const filters = { ...state.filters, status: status && only !== status ? [status] : [] };
        location.hash = listHash(filters, state.limit);
      },
    }, h("span", { class: "count-value" }, String(value)), h("span", { class: "count-label" }, label));
  };
  $("#counts").replaceChildren(
    card("All instances", total, null),
    ...STATUSES.map((s) => card(s, counts[s] || 0, s)),
  );
}

function renderRows(page) {
  state.nextCursor = page.next_cursor;
  // Keep the row of an instance that did not change, so that a refresh never swaps a
  // button away under the user's pointer; touch the table only if a row changed.
  const rows = new Map();
  const trs = page.items.map((st) => {
    const json = JSON.stringify(st);
    const kept = state.rows.get(st.instance_id);
    const tr = kept && kept.json === json ? kept.tr : row(st);
    rows.set(st.instance_id, { json, tr });
    return tr;
  });
  state.rows = rows;
  const tbody = $("#rows");
  const same = trs.length === tbody.children.length && trs.every((tr, i) => tbody.children[i] === tr);
  if (!same) tbody.replaceChildren(...trs);
  $("#empty").hidden = page.items.length > 0;
  const index = state.cursors.length - 1;
  const first = index * state.limit + 1;
  $("#page-info").textContent = page.items.length
    ? `Page ${index + 1} · ${first}–${first + page.items.length - 1}${page.next_cursor ? "" : " (last page)"}`
    : `Page ${index + 1}`;
  $("#prev-page").disabled = $("#first-page").disabled = index === 0;
  $("#next-page").disabled = !page.next_cursor;
  updateSelectionUi();
}

function row(st) {
  const paused = st.runtime_status === "PAUSED";
  let action = null;
  if (paused) {
    action = h("button", {
      type: "button", class: "small", onclick: () => resumeNow({ kind: "one", id: st.instance_id }),
    }, "Resume");
  } else if (LIVE.has(st.runtime_status)) {
    action = h("button", {
      type: "button", class: "small", onclick: () => pauseDialog({ kind: "one", id: st.instance_id }),
    }, "Pause…");
  }
  return h(
    "tr",
    { class: paused ? "row-paused" : "", "data-id": st.instance_id },
    h("td", { class: "col-check" },
      h("input", { type: "checkbox", value: st.instance_id, "aria-label": `Select ${st.instance_id}` })),
    h("td", { class: "col-id" }, instanceLink(st.instance_id)),
    h("td", {}, st.name),
    h("td", {}, badge(st.runtime_status)),
    h("td", { class: "nowrap", title: relative(st.created_at) }, fmtTime(st.created_at)),
    h("td", { class: "col-details" }, details(st)),
    h("td", { class: "col-action" }, action),
  );
}

/** The Details cell: why it is paused, why it failed, or its custom status. */
function details(st) {
  if (st.pause) return pauseSummary(st.pause);
  if (st.held_activities && st.held_activities.length) return heldText(st.held_activities);
  if (st.failure) return h("span", { class: "failure-text" }, `${st.failure.type}: ${st.failure.message}`);
  if (st.custom_status !== null && st.custom_status !== undefined) {
    const text = typeof st.custom_status === "string" ? st.custom_status : json(st.custom_status, 0);
    return h("span", { class: "custom", title: "Custom status" }, clip(text, 160));
  }
  return null;
}

/** Where a pause came from, when not from a client call. */
const SOURCES = {
  parent: "via its parent",
  orchestration: "paused itself",
  orchestrator: "standing pause of its orchestrator",
};

/** Activities this instance waits on that a standing activity pause holds. */
function heldText(names) {
  return h("span", { class: "held" },
    `Waiting on held ${names.length === 1 ? "activity" : "activities"}: ${names.join(", ")}`);
}

function pauseSummary(p) {
  const meta = [];
  if (p.by) meta.push(`by ${p.by}`);
  meta.push(["since ", fmtTime(p.since), " (", rel(p.since), ")"]);
  if (p.resume_at) meta.push(["resumes ", fmtTime(p.resume_at), " (", rel(p.resume_at), ")"]);
  if (SOURCES[p.source]) meta.push(SOURCES[p.source]);
  return h("div", { class: "pause-summary" },
    h("div", { class: "pause-reason" }, p.reason || "(no reason given)"),
    h("div", { class: "pause-meta" }, joined(meta)));
}

/** Parts separated by " · ". */
function joined(parts) {
  return parts.flatMap((part, i) => (i ? [" · ", part] : [part]));
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

/* ---------------------------------------------------------------- one instance */

async function refreshInstance() {
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
  const key = JSON.stringify(st);
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
  renderInstance(st, history.events, children.items);
}

function backLink() {
  return h("a", { href: state.listHash, class: "back" }, "‹ All instances");
}

function renderInstance(st, events, prefixed) {
  const one = { kind: "one", id: st.instance_id };
  const live = LIVE.has(st.runtime_status);
  const actions = h("div", { class: "actions" },
    st.runtime_status === "PAUSED"
      ? h("button", { type: "button", class: "primary", onclick: () => resumeNow(one) }, "Resume")
      : h("button", { type: "button", disabled: !live, onclick: () => pauseDialog(one) }, "Pause…"),
    h("button", { type: "button", disabled: !live, onclick: () => raiseDialog(one) }, "Raise event…"),
    h("button", { type: "button", class: "danger-outline", disabled: !live, onclick: () => terminateDialog(one) }, "Terminate…"),
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
    st.held_activities && st.held_activities.length
      ? h("div", { class: "held-panel" }, heldText(st.held_activities)) : null,
    facts,
    h("div", { class: "panels" },
      valuePanel("Input", st.input),
      st.failure ? null : valuePanel("Output", st.output, live ? "(not finished)" : null),
      valuePanel("Custom status", st.custom_status),
      st.failure ? failurePanel(st.failure) : null,
    ),
    childrenSection(st, events, prefixed),
    historySection(st, events),
  ].filter(Boolean));
}

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
    (group ? group.body : list).append(eventItem(e, start));
  }
  return list;
}

const HIDDEN_FIELDS = new Set(["sequence", "type", "timestamp"]);

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

/* ---------------------------------------------------------------- refresh loop */

let busy = false;
let again = false;

/** Reload what the current view shows; a call while one runs is done right after it. */
async function refresh() {
  if (state.locked) return;
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  try {
    if (state.route.view === "instance") await refreshInstance();
    else await refreshList();
    if (!state.locked) {
      $("#main").hidden = false;
      $("#forget-token").hidden = !state.token;
      $("#refreshed").textContent = `Updated ${fmtTime(new Date().toISOString()).slice(11)}`;
      $("#refreshed").classList.remove("stale");
    }
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      $("#refreshed").textContent = err.status === 0 ? "Connection lost; retrying" : err.message;
      $("#refreshed").classList.add("stale");
    }
  } finally {
    busy = false;
    if (again) {
      again = false;
      refresh();
    }
  }
}

function tick() {
  updateClocks();
  if ($("#auto-refresh").checked && !document.hidden && !state.locked && !busy) refresh();
}

function start() {
  setupAuth();
  setupList();
  $("#notice-close").addEventListener("click", () => { $("#notice").hidden = true; });
  $("#footer").textContent =
    `Times are in ${Intl.DateTimeFormat().resolvedOptions().timeZone || "local time"}.`;
  window.addEventListener("hashchange", onRoute);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  onRoute();
  setInterval(tick, POLL_MS);
}

start();

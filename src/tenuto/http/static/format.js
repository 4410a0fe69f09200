/* Building the page and putting values on it as text: h() appends strings as Text
 * nodes, never markup. Times, durations, instance links, and how a pause reads (its
 * reason, who, since when, where it came from), wherever a pause is shown. */

export const $ = (selector, root = document) => root.querySelector(selector);

/** An element with attributes and children; strings become Text nodes, never markup. */
export function h(tag, attrs, ...children) {
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

export const enc = encodeURIComponent;
const pad = (n, width = 2) => String(n).padStart(width, "0");
export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function fmtTime(iso, withMs = false) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${date} ${time}${withMs ? "." + pad(d.getMilliseconds(), 3) : ""}`;
}

export function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** "5 min ago" or "in 2 h". */
export function relative(iso) {
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
export function sofar(iso) {
  return h("span", { class: "clock", "data-since": iso },
    `${fmtDuration(Date.now() - new Date(iso).getTime())} so far`);
}

export function updateClocks() {
  for (const el of document.querySelectorAll(".clock")) {
    if (el.dataset.at) el.textContent = relative(el.dataset.at);
    else el.textContent = `${fmtDuration(Date.now() - new Date(el.dataset.since).getTime())} so far`;
  }
}

/** A datetime-local value (local time) as an ISO 8601 instant, or null. */
export function localToIso(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export function json(value, indent = 2) {
  return value === undefined ? "" : JSON.stringify(value, null, indent);
}

export function badge(status) {
  return h("span", { class: `badge badge-${status.toLowerCase()}` }, status);
}

export function instanceLink(id, text) {
  return h("a", { href: `#/instance/${enc(id)}`, class: "mono" }, text ?? id);
}

/** Where a pause came from, when not from a client call. */
export const SOURCES = {
  parent: "via its parent",
  orchestration: "paused itself",
  orchestrator: "standing pause of its orchestrator",
  nondeterminism: "its code no longer matches its history",
  failure: "a call failed its last attempt",
  entity: "standing pause of its entity type",
};

/** Activities this instance waits on that a standing activity pause holds. */
export function heldText(names) {
  return h("span", { class: "held" },
    `Waiting on held ${names.length === 1 ? "activity" : "activities"}: ${names.join(", ")}`);
}

export function pauseSummary(p) {
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
export function joined(parts) {
  return parts.flatMap((part, i) => (i ? [" · ", part] : [part]));
}

export function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

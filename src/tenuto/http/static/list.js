/* The instance list (#/?status=...&name=...&prefix=...&from=...&to=...): counts per
 * status, filters kept in the URL, pages, a selection and the actions on it. */

import { emptyFilters, LIVE, MAX_SELECT, refresh, state, STATUSES } from "./state.js";
import {
  $, badge, clip, fmtTime, h, heldText, instanceLink, json, pauseSummary, plural, relative,
} from "./format.js";
import { api, filterParams } from "./api.js";
import {
  notify, pauseDialog, raiseDialog, resumeAllDialog, resumeDialog, showError, terminateDialog,
} from "./actions.js";
import { renderStanding } from "./standing.js";

/** The URL hash of the list with these filters and page size. */
function listHash(filters, limit) {
  const q = new URLSearchParams();
  if (filters.status.length) q.set("status", filters.status.join(","));
  for (const key of ["name", "prefix", "from", "to"]) if (filters[key]) q.set(key, filters[key]);
  if (limit !== 50) q.set("limit", String(limit));
  const text = q.toString();
  return text ? `#/?${text}` : "#/";
}

/** The filter form's inputs, by filter key. */
const FILTER_INPUTS = { name: "orchestrator", prefix: "prefix", from: "from", to: "to" };

export function applyFilters(filters, limit) {
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

export function setupList() {
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
    resume: () => resumeDialog(selected()),
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

export async function refreshList() {
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
  const trs = nested(page.items).map(([st, depth]) => {
    const json = JSON.stringify([st, depth]);
    const kept = state.rows.get(st.instance_id);
    const tr = kept && kept.json === json ? kept.tr : row(st, depth);
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

/** The page's instances with each sub-orchestration right under its parent (when the
 * parent is on the page), as [status, depth]; the rest keep their order. */
function nested(items) {
  const onPage = new Set(items.map((st) => st.instance_id));
  const children = new Map();
  for (const st of items) {
    const parent = st.parent_instance_id;
    if (parent && onPage.has(parent) && parent !== st.instance_id) {
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(st);
    }
  }
  const out = [];
  const seen = new Set();
  const visit = (st, depth) => {
    if (seen.has(st.instance_id)) return;
    seen.add(st.instance_id);
    out.push([st, depth]);
    for (const child of children.get(st.instance_id) || []) visit(child, depth + 1);
  };
  for (const st of items) {
    const parent = st.parent_instance_id;
    if (!(parent && onPage.has(parent))) visit(st, 0);
  }
  for (const st of items) visit(st, 0); // a cycle of parents (never made by tenuto)
  return out;
}

function row(st, depth = 0) {
  const paused = st.runtime_status === "PAUSED";
  let action = null;
  if (paused) {
    action = h("button", {
      type: "button", class: "small", onclick: () => resumeDialog({ kind: "one", id: st.instance_id }),
    }, "Resume…");
  } else if (LIVE.has(st.runtime_status)) {
    action = h("button", {
      type: "button", class: "small", onclick: () => pauseDialog({ kind: "one", id: st.instance_id }),
    }, "Pause…");
  }
  return h(
    "tr",
    {
      class: [paused ? "row-paused" : "", depth ? "row-child" : ""].join(" ").trim(),
      "data-id": st.instance_id,
      "data-depth": String(depth),
    },
    h("td", { class: "col-check" },
      h("input", { type: "checkbox", value: st.instance_id, "aria-label": `Select ${st.instance_id}` })),
    h("td", { class: "col-id", style: depth ? `padding-left: ${depth * 1.25}rem` : null },
      depth ? h("span", { class: "child-mark", "aria-hidden": "true" }, "↳ ") : null,
      instanceLink(st.instance_id)),
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

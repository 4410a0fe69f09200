/* The entity list (#/entities): every durable entity with its state, when it last
 * changed, the orchestration holding its lock, its queued operations and its pause,
 * a page at a time, with Pause and Resume per entity. */

import { refresh } from "./state.js";
import { $, clip, enc, fmtTime, h, json, pauseSummary } from "./format.js";
import { api } from "./api.js";
import { notify, showError } from "./actions.js";

const view = { name: "", cursors: [null], key: "" };

function entityPath(e) {
  return `api/entities/${enc(e.name)}/${enc(e.key)}`;
}

async function act(e, verb) {
  const body = verb === "pause" ? { reason: "paused from the dashboard" } : {};
  const r = await api("POST", `${entityPath(e)}/${verb}`, body);
  notify(r.changed ? `${verb === "pause" ? "Paused" : "Resumed"} ${e.entity_id}.`
    : `${e.entity_id} was ${verb === "pause" ? "already paused" : "not paused"}.`);
  refresh();
}

function row(e) {
  const paused = e.pause !== null;
  // An entity held by a standing pause of its type is resumed with its type (banner).
  const button = paused && e.pause.source === "entity"
    ? h("span", { class: "muted" }, "held by its type")
    : paused
      ? h("button", { type: "button", class: "small", onclick: () => act(e, "resume").catch(showError) }, "Resume")
      : h("button", { type: "button", class: "small", onclick: () => act(e, "pause").catch(showError) }, "Pause");
  return h("tr", { "data-entity": e.entity_id, class: paused ? "paused" : "" },
    h("td", { class: "mono" }, e.entity_id),
    h("td", { class: "mono state" }, e.has_state ? clip(json(e.state, 0), 80) : "—"),
    h("td", {}, fmtTime(e.last_modified)),
    h("td", { class: "mono" }, e.locked_by || ""),
    h("td", { class: "num" }, String(e.pending_operations)),
    h("td", {}, paused ? pauseSummary(e.pause) : ""),
    h("td", { class: "col-action" }, button));
}

/** Load and show the current page of entities. */
export async function refreshEntities() {
  const params = new URLSearchParams({ limit: "50" });
  if (view.name) params.set("name", view.name);
  const cursor = view.cursors[view.cursors.length - 1];
  if (cursor) params.set("cursor", cursor);
  const page = await api("GET", `api/entities?${params}`);
  const key = JSON.stringify(page);
  if (key === view.key) return;
  view.key = key;
  $("#entity-rows").replaceChildren(...page.items.map(row));
  $("#entity-empty").hidden = page.items.length > 0;
  $("#entity-next").disabled = !page.next_cursor;
  $("#entity-prev").disabled = view.cursors.length < 2;
  view.next = page.next_cursor;
}

export function setupEntities() {
  $("#entity-filters").addEventListener("submit", (ev) => ev.preventDefault());
  $("#entity-filter").addEventListener("input", (ev) => {
    view.name = ev.target.value.trim();
    view.cursors = [null];
    refresh();
  });
  $("#entity-next").addEventListener("click", () => {
    if (view.next) view.cursors.push(view.next);
    refresh();
  });
  $("#entity-prev").addEventListener("click", () => {
    if (view.cursors.length > 1) view.cursors.pop();
    refresh();
  });
}

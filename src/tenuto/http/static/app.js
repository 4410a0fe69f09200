/* The tenuto dashboard: plain JavaScript modules, no build step, no dependencies.
 *
 * Everything comes from the REST API under /api/. Every value from the server or typed by
 * a user is put on the page as text (h() appends strings as Text nodes); nothing here
 * uses innerHTML. Routes live in the URL hash:
 *   #/?status=PAUSED,RUNNING&name=backup&prefix=vol-&from=...&to=...   the instance list
 *   #/instance/<id>                                                      one instance
 *   #/schedules                                          schedules and flow-control limits
 *   #/entities                                                           the entities
 *   #/workers                                                            the live workers
 *
 * This module starts the page: the routing and the refresh loop. The views are list.js
 * (with standing.js, the banner of standing pauses) and instance.js; they act through
 * actions.js, which calls api.js; state.js and format.js are shared by all of them.
 */
import { POLL_MS, setReloader, state, STATUSES } from "./state.js";
import { $, fmtTime, h, updateClocks } from "./format.js";
import { api, ApiError, setupAuth } from "./api.js";
import { applyFilters, refreshList, setupList } from "./list.js";
import { refreshInstance } from "./instance.js";
import { refreshFlow } from "./flow.js";
import { refreshEntities, setupEntities } from "./entities.js";
import { workersView } from "./work.js";

async function refreshWorkers() {
  const found = await api("GET", "api/workers");
  if (state.route.view === "workers") $("#workers-view").replaceChildren(...workersView(found.items));
}

/* ---------------------------------------------------------------- routing */

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  if (hash === "/schedules") return { view: "schedules" };
  if (hash === "/entities") return { view: "entities" };
  if (hash === "/workers") return { view: "workers" };
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

function onRoute() {
  const route = parseRoute();
  state.route = route;
  $("#list-view").hidden = route.view !== "list";
  $("#instance-view").hidden = route.view !== "instance";
  $("#workers-view").hidden = route.view !== "workers";
  $("#flow-view").hidden = route.view !== "schedules";
  $("#entities-view").hidden = route.view !== "entities";
  if (route.view === "schedules") {
    document.title = "tenuto · schedules and limits";
  } else if (route.view === "entities") {
    document.title = "tenuto · entities";
  } else if (route.view === "workers") {
    document.title = "tenuto · workers";
  } else if (route.view === "list") {
    state.listHash = location.hash || "#/";
    applyFilters(route.filters, route.limit);
    document.title = "tenuto · instances";
  } else {
    state.instanceKey = "";
    $("#instance-view").replaceChildren(h("p", { class: "muted" }, "Loading…"));
    document.title = `tenuto · ${route.id}`;
  }
  reload();
}

/* ---------------------------------------------------------------- refresh loop */

let busy = false;
let again = false;

/** Reload what the current view shows; a call while one runs is done right after it. */
async function reload() {
  if (state.locked) return;
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  try {
    if (state.route.view === "instance") await refreshInstance();
    else if (state.route.view === "schedules") await refreshFlow();
    else if (state.route.view === "entities") await refreshEntities();
    else if (state.route.view === "workers") await refreshWorkers();
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
      reload();
    }
  }
}

function tick() {
  updateClocks();
  if ($("#auto-refresh").checked && !document.hidden && !state.locked && !busy) reload();
}

function start() {
  setReloader(reload);
  setupAuth();
  setupList();
  setupEntities();
  $("#notice-close").addEventListener("click", () => { $("#notice").hidden = true; });
  $("#footer").textContent =
    `Times are in ${Intl.DateTimeFormat().resolvedOptions().timeZone || "local time"}.`;
  window.addEventListener("hashchange", onRoute);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) reload(); });
  onRoute();
  setInterval(tick, POLL_MS);
}

start();

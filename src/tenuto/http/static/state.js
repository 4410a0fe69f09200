/* The dashboard's state: what the page shows and remembers between refreshes, and the
 * constants every view reads. The refresh loop lives in app.js, which imports every view;
 * views and actions ask it to run through refresh() here, so that imports flow one way
 * (app.js -> views -> actions -> api -> format, state). */

export const STATUSES = ["PENDING", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "TERMINATED"];
export const LIVE = new Set(["PENDING", "RUNNING", "PAUSED"]);
export const POLL_MS = 2500;
export const TOKEN_KEY = "tenuto.token";
export const MAX_SELECT = 10000;

export const state = {
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

export function emptyFilters() {
  return { status: [], name: "", prefix: "", from: "", to: "" };
}

/** Run by refresh(): the loop of app.js, set when the page starts. */
let reloader = () => {};

/** Reload what the current view shows (a call while a reload runs is done right after it). */
export function refresh() {
  return reloader();
}

/** Make `loop` what refresh() runs. */
export function setReloader(loop) {
  reloader = loop;
}


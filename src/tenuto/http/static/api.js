/* The REST API under /api/, the filters it takes, and the token it may need: asked for
 * when the API answers 401, kept in this tab's sessionStorage only. */

import { refresh, state, TOKEN_KEY } from "./state.js";
import { $, fmtTime, localToIso } from "./format.js";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body) {
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
export function filterParams(f) {
  const params = new URLSearchParams();
  for (const s of f.status) params.append("status", s);
  if (f.name) params.set("name", f.name);
  if (f.prefix) params.set("id_prefix", f.prefix);
  if (localToIso(f.from)) params.set("created_from", localToIso(f.from));
  if (localToIso(f.to)) params.set("created_to", localToIso(f.to));
  return params;
}

/** The JSON filter of the bulk endpoints. */
export function filterBody(f) {
  const body = {};
  if (f.status.length) body.status = [...f.status];
  if (f.name) body.name = f.name;
  if (f.prefix) body.id_prefix = f.prefix;
  if (localToIso(f.from)) body.created_from = localToIso(f.from);
  if (localToIso(f.to)) body.created_to = localToIso(f.to);
  return body;
}

export function describeFilter(f) {
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

export function setupAuth() {
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

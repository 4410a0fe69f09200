/* The banner of standing pauses: orchestrator, activity and entity types held
 * everywhere, each with its Resume button. */

import { refresh } from "./state.js";
import { $, enc, h, pauseSummary } from "./format.js";
import { api } from "./api.js";
import { notify, showError } from "./actions.js";

const PATHS = { activity: "activities", orchestrator: "orchestrators", entity: "entity-types" };
const LABELS = { activity: "Activity", orchestrator: "Orchestrator", entity: "Entity type" };
const EFFECTS = {
  activity: " is held in every orchestration",
  orchestrator: " is paused: its instances pause, new ones are held",
  entity: " is paused: operations queue for all its entities",
};

/** Standing pauses: orchestrator, activity and entity types held everywhere. */
export function renderStanding(items) {
  const box = $("#standing");
  box.hidden = !items.length;
  box.replaceChildren(...items.map((sp) => {
    const path = `api/${PATHS[sp.kind]}/${enc(sp.name)}/resume`;
    const what = `${LABELS[sp.kind].toLowerCase()} ${sp.name}`;
    const resume = async () => {
      const r = await api("POST", path, {});
      notify(r.changed ? `Resumed ${what}.` : `The ${what} was not paused.`);
      refresh();
    };
    return h("div", { class: "standing-item", "data-kind": sp.kind, "data-name": sp.name },
      h("span", { class: "pause-icon", "aria-hidden": "true" }, "❚❚"),
      h("div", { class: "standing-text" },
        h("strong", {}, `${LABELS[sp.kind]} `),
        h("span", { class: "mono" }, sp.name),
        h("span", { class: "muted" }, EFFECTS[sp.kind]),
        pauseSummary({ ...sp, source: "client" })),
      h("button", { type: "button", class: "small", onclick: () => resume().catch(showError) },
        "Resume"));
  }));
}

/* The banner of standing pauses: orchestrator, activity and entity types held
 * everywhere, and paused schedules, each with its Resume button. */

import { refresh } from "./state.js";
import { $, enc, h, pauseSummary } from "./format.js";
import { api } from "./api.js";
import { notify, showError } from "./actions.js";

/** What each kind of standing pause is: its API collection, name and effect. */
const KINDS = {
  orchestrator: ["orchestrators", "Orchestrator", " is paused: its instances pause, new ones are held"],
  activity: ["activities", "Activity", " is held in every orchestration"],
  schedule: ["schedules", "Schedule", " is paused: no new runs"],
  entity: ["entity-types", "Entity type", " is paused: operations queue for all its entities"],
};

/** Standing pauses: orchestrator, activity and entity types, and schedules. */
export function renderStanding(items) {
  const box = $("#standing");
  box.hidden = !items.length;
  box.replaceChildren(...items.map((sp) => {
    const [collection, title, effect] = KINDS[sp.kind] || KINDS.orchestrator;
    const path = `api/${collection}/${enc(sp.name)}/resume`;
    const what = `${title.toLowerCase()} ${sp.name}`;
    const resume = async () => {
      const r = await api("POST", path, {});
      notify(r.changed ? `Resumed ${what}.` : `The ${what} was not paused.`);
      refresh();
    };
    return h("div", { class: "standing-item", "data-kind": sp.kind, "data-name": sp.name },
      h("span", { class: "pause-icon", "aria-hidden": "true" }, "❚❚"),
      h("div", { class: "standing-text" },
        h("strong", {}, `${title} `),
        h("span", { class: "mono" }, sp.name),
        h("span", { class: "muted" }, effect),
        pauseSummary({ ...sp, source: "client" })),
      h("button", { type: "button", class: "small", onclick: () => resume().catch(showError) },
        "Resume"));
  }));
}

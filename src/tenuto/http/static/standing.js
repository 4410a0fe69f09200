/* The banner of standing pauses: orchestrator types and activity types held
 * everywhere, each with its Resume button. */

import { refresh } from "./state.js";
import { $, enc, h, pauseSummary } from "./format.js";
import { api } from "./api.js";
import { notify, showError } from "./actions.js";

/** Standing pauses: orchestrator types and activity types held everywhere. */
export function renderStanding(items) {
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

/* Running a finished instance again (rewind a failed one, restart a finished one), and
 * handing the failure that paused an instance to its code. */

import { refresh } from "./state.js";
import { enc, h } from "./format.js";
import { api } from "./api.js";
import { notify, openDialog, showError } from "./actions.js";

/** Rewind (a FAILED instance) and Restart (any finished one), for the instance view. */
export function rerunButtons(st) {
  if (!["COMPLETED", "FAILED", "TERMINATED"].includes(st.runtime_status)) return [];
  return [
    st.runtime_status === "FAILED"
      ? h("button", { type: "button", class: "primary", onclick: () => rewindDialog(st.instance_id) }, "Rewind…")
      : null,
    h("button", { type: "button", onclick: () => restartDialog(st.instance_id) }, "Restart…"),
  ].filter(Boolean);
}

/** For an instance paused by a failed call: resume it with the failure delivered. */
export function deliverFailureButton(st) {
  if (!st.pause || st.pause.source !== "failure") return null;
  return h("button", {
    type: "button",
    title: "Resume, and raise the failure in the orchestrator instead of running the call again",
    onclick: () => deliverFailure(st.instance_id),
  }, "Deliver failure");
}

function deliverFailure(id) {
  api("POST", `api/instances/${enc(id)}/resume`, { deliver_failure: true })
    .then(() => { notify(`Resumed ${id} with the failure delivered.`); refresh(); })
    .catch(showError);
}

function rewindDialog(id) {
  openDialog({
    title: "Rewind",
    submitLabel: "Rewind",
    content: [
      h("p", { class: "target" }, "Rewind ", h("strong", {}, id)),
      h("p", { class: "muted" },
        "It runs again from before its failure: the calls that failed run again, those "
        + "that succeeded keep their results."),
      h("label", {}, "Reason (optional)", h("input", { name: "reason", maxlength: 4096 })),
    ],
    onSubmit: async (form) => {
      const body = {};
      if (form.reason.value.trim()) body.reason = form.reason.value.trim();
      await api("POST", `api/instances/${enc(id)}/rewind`, body);
      notify(`Rewound ${id}.`);
      refresh();
    },
  });
}

function restartDialog(id) {
  openDialog({
    title: "Restart",
    submitLabel: "Restart",
    content: [
      h("p", { class: "target" }, "Restart ", h("strong", {}, id), " from the beginning, with its input"),
      h("label", { class: "check" },
        h("input", { name: "new_id", type: "checkbox" }),
        " Under a new ID (keep this instance; otherwise the new run replaces it)"),
      h("label", {}, "Reason (optional)", h("input", { name: "reason", maxlength: 4096 })),
    ],
    onSubmit: async (form) => {
      const body = { new_instance_id: form.new_id.checked };
      if (form.reason.value.trim()) body.reason = form.reason.value.trim();
      const r = await api("POST", `api/instances/${enc(id)}/restart`, body);
      notify(`Restarted ${id} as ${r.instance_id}.`);
      if (r.instance_id !== id) location.hash = `#/instance/${enc(r.instance_id)}`;
      else refresh();
    },
  });
}

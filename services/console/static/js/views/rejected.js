// View Rejected Events: the events the endpoint answered 400 to. View the
// payload (as it was sent), retry it, delete it.

import { h, pretty, replace, time } from "../dom.js";
import { api } from "../api.js";
import { confirmDialog, notify, openDialog, showError } from "../app.js";
import { header } from "./common.js";

export async function rejectedPage(main, ctx) {
  const id = ctx.params[0];
  document.title = `Rejected events of ${id} · Event Stream`;
  const [integration, rows] = await Promise.all([api.get(id), api.rejected(id)]);
  const again = async (focusHeading = true) => {
    await rejectedPage(main, ctx);
    if (focusHeading) main.querySelector("h1").focus();
  };

  const view = async (ev) => {
    try {
      const r = await api.rejectedEvent(id, ev.id);
      const choice = await openDialog({
        title: "Rejected event " + ev.id,
        body: [h("p", { class: "muted" }, "The event exactly as it was sent to the endpoint."),
          h("pre", { class: "json", tabindex: "0", "aria-label": "Event payload" }, pretty(r.text))],
        actions: [{ label: "Close", value: null }, { label: "Retry now", kind: "primary", value: "retry" }],
      });
      if (choice === "retry") await retry(ev);
    } catch (err) { showError(err); }
  };
  const retry = async (ev) => {
    try {
      await api.retryRejected(id, ev.id);
      notify(`Event ${ev.id} was delivered and removed from the rejected events.`);
      await again();
    } catch (err) { showError(err); }
  };
  const remove = async (ev) => {
    if (!await confirmDialog("Delete rejected event?", `Event ${ev.id} is deleted permanently; it will not be sent again.`, "Delete event")) return;
    try {
      await api.deleteRejected(id, ev.id);
      notify(`Deleted rejected event ${ev.id}.`);
      await again();
    } catch (err) { showError(err); }
  };

  const refresh = h("button", { type: "button", class: "btn", onclick: () => again() }, "Refresh");
  replace(main, header(integration, "rejected", "Rejected events", refresh),
    h("p", { class: "muted" }, `Events the endpoint refused with HTTP 400 (at most 30 are kept; ${rows.length} now). Retry sends one again now; it is removed when the endpoint accepts it.`),
    h("div", { class: "table-wrap" }, rows.length === 0
      ? h("p", { class: "empty" }, "No rejected events.")
      : h("table", { id: "rejected" },
        h("caption", { class: "visually-hidden" }, `Rejected events of ${id}`),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "ID"), h("th", { scope: "col" }, "Created at"), h("th", { scope: "col" }, "Actions"))),
        h("tbody", {}, rows.map((ev) => h("tr", { "data-id": ev.id },
          h("td", { class: "mono" }, ev.id),
          h("td", {}, time(ev.created_at)),
          h("td", {}, h("div", { class: "actions" },
            h("button", { type: "button", class: "btn btn-small", "aria-label": `View payload of ${ev.id}`, "data-action": "view", onclick: () => view(ev) }, "View payload"),
            h("button", { type: "button", class: "btn btn-small", "aria-label": `Retry ${ev.id}`, "data-action": "retry", onclick: () => retry(ev) }, "Retry"),
            h("button", { type: "button", class: "btn btn-small btn-danger", "aria-label": `Delete ${ev.id}`, "data-action": "delete", onclick: () => remove(ev) }, "Delete")))))))));
}

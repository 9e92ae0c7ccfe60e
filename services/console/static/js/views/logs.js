// View Logs: the integration's last 50 log entries, newest first.

import { badge, h, replace, time } from "../dom.js";
import { api } from "../api.js";
import { header } from "./common.js";

const actions = {
  integration_started: ["Started", "ok"],
  integration_stopped: ["Stopped", "idle"],
  integration_completed: ["Completed", "info"],
  retry_triggered: ["Retry", "warn"],
};

export async function logsPage(main, ctx) {
  const id = ctx.params[0];
  document.title = `Logs of ${id} · Event Stream`;
  const [integration, entries] = await Promise.all([api.get(id), api.logs(id)]);
  const refresh = h("button", { type: "button", class: "btn", onclick: () => logsPage(main, ctx) }, "Refresh");
  replace(main, header(integration, "logs", "Logs", refresh),
    h("p", { class: "muted" }, "The last 50 entries, newest first."),
    h("div", { class: "table-wrap" }, entries.length === 0
      ? h("p", { class: "empty" }, "No log entries.")
      : h("table", { id: "logs" },
        h("caption", { class: "visually-hidden" }, `Log of ${id}`),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Action"), h("th", { scope: "col" }, "Reason"), h("th", { scope: "col" }, "Created at"))),
        h("tbody", {}, entries.map((e) => {
          const [label, kind] = actions[e.action] || [e.action, "info"];
          return h("tr", {},
            h("td", {}, badge(label, kind), h("span", { class: "cell-sub mono" }, e.action)),
            h("td", {}, e.reason),
            h("td", {}, time(e.created_at)));
        })))));
}

// The integrations list: All / Active / Paused, the start/pause switch, the
// Actions menu and delete with a confirmation.

import { h, replace, statusBadge, time } from "../dom.js";
import { api } from "../api.js";
import { confirmDialog, notify, setQuery, showError } from "../app.js";
import { describeFilter, describeTarget, integrationHref } from "./common.js";

const views = [
  ["all", "All", () => true],
  ["active", "Active", (i) => i.status === "running"],
  ["paused", "Paused", (i) => i.status !== "running"],
];

export async function integrationsPage(main, ctx) {
  document.title = "Integrations · Event Stream";
  let view = ctx.query.get("view") || "all";
  if (!views.some(([v]) => v === view)) view = "all";
  let list = await api.list();
  // Delivery figures of the last 24 hours per integration, from one summary
  // call; the list does not wait for them.
  let stats = null;
  api.summary("from=" + encodeURIComponent(new Date(Date.now() - 86400e3).toISOString()))
    .then((sum) => {
      stats = {};
      for (const c of sum.by_integration || []) stats[c.integration_id] = c;
      if (!ctx.signal.aborted) draw();
    }, () => { stats = {}; });

  const tabs = h("ul", { class: "tabs" });
  const body = h("div");
  replace(main,
    h("div", { class: "page-head" },
      h("h1", { tabindex: "-1" }, "Integrations"),
      h("a", { class: "btn btn-primary", href: "#/new" }, "New Integration")),
    h("nav", { "aria-label": "Integration views" }, tabs),
    body);

  const draw = () => {
    replace(tabs, views.map(([v, label, pred]) => h("li", {},
      h("a", {
        href: "#/integrations?view=" + v, "aria-current": v === view ? "page" : false,
        onclick: (e) => { e.preventDefault(); view = v; const q = new URLSearchParams(ctx.query); q.set("view", v); setQuery(q); draw(); },
      }, label, " ", h("span", { class: "count" }, String(list.filter(pred).length))))));
    const pred = views.find(([v]) => v === view)[2];
    const rows = list.filter(pred);
    if (!rows.length) {
      replace(body, h("div", { class: "table-wrap" }, h("p", { class: "empty" },
        list.length ? "No integrations in this view." : "No integrations yet. Create one with New Integration.")));
      return;
    }
    replace(body, h("div", { class: "table-wrap with-menus" }, h("table", { id: "integrations" },
      h("caption", { class: "visually-hidden" }, views.find(([v]) => v === view)[1] + " integrations"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Integration"),
        h("th", { scope: "col" }, "Target"),
        h("th", { scope: "col" }, "Events"),
        h("th", { scope: "col" }, "Status"),
        h("th", { scope: "col" }, "Last 24 hours"),
        h("th", { scope: "col" }, "Active"),
        h("th", { scope: "col" }, h("span", {}, "Actions")))),
      h("tbody", {}, rows.map((i) => row(i))))));
  };

  const reload = async () => {
    list = await api.list();
    draw();
  };

  const row = (i) => {
    const t = describeTarget(i);
    const running = i.status === "running";
    const toggle = h("button", {
      type: "button", role: "switch", class: "switch", "aria-checked": String(running),
      "aria-label": `Active: ${i.id}`, "data-toggle": i.id,
    }, h("span", { class: "track", "aria-hidden": "true" }));
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        if (running) await api.stop(i.id);
        else await api.start(i.id);
        notify(`${running ? "Paused" : "Started"} ${i.id}.`);
        await reload();
        const again = main.querySelector(`[data-toggle="${CSS.escape(i.id)}"]`);
        if (again) again.focus();
      } catch (err) {
        toggle.disabled = false;
        showError(err);
      }
    });
    return h("tr", { "data-id": i.id },
      h("td", { class: "c-id" },
        h("a", { href: integrationHref(i.id), class: "mono" }, i.id),
        h("span", { class: "cell-sub" }, i.integration_type === "temporary" ? "Temporary" : "Permanent",
          i.starts_at ? [" · from ", time(i.starts_at)] : null, i.ends_at ? [" to ", time(i.ends_at)] : null)),
      h("td", { class: "target" }, h("span", { class: "badge badge-info" }, t.kind), " ", h("span", { class: "mono" }, t.text)),
      h("td", { class: "c-events" }, describeFilter(i)),
      h("td", { class: "c-status" }, statusBadge(i.status)),
      h("td", { class: "stats-cell" }, dayStats(stats, i.id)),
      h("td", { class: "c-toggle" }, toggle),
      h("td", { class: "c-actions" }, actionsMenu(i, async () => {
        const ok = await confirmDialog(`Delete ${i.id}?`,
          `The integration ${i.id} stops receiving events, and its logs and rejected events are deleted. This cannot be undone.`,
          "Delete integration");
        if (!ok) return;
        try {
          await api.remove(i.id);
          notify(`Deleted ${i.id}.`);
          await reload();
          main.querySelector("h1").focus();
        } catch (err) {
          showError(err);
        }
      })));
  };

  draw();
}

// actionsMenu is a disclosure button with the per-integration actions.
function actionsMenu(i, onDelete) {
  const listId = "actions-" + i.id;
  const btn = h("button", { type: "button", class: "btn btn-small", "aria-expanded": "false", "aria-controls": listId, "aria-label": `Actions for ${i.id}` }, "Actions ▾");
  const close = (focus) => { list.hidden = true; btn.setAttribute("aria-expanded", "false"); if (focus) btn.focus(); };
  const item = (label, href) => h("li", {}, h("a", { href }, label));
  const list = h("ul", { id: listId, hidden: true },
    item("Overview", integrationHref(i.id)),
    item("View Events", integrationHref(i.id, "events")),
    item("View Rejected Events", integrationHref(i.id, "rejected")),
    item("View Logs", integrationHref(i.id, "logs")),
    item("Edit Integration Details", integrationHref(i.id, "edit")),
    h("li", {}, h("button", { type: "button", class: "danger", onclick: () => { close(false); onDelete(); } }, "Delete")));
  btn.addEventListener("click", () => {
    const open = list.hidden;
    list.hidden = !open;
    btn.setAttribute("aria-expanded", String(open));
    if (open) list.querySelector("a").focus();
  });
  const wrap = h("div", { class: "menu" }, btn, list);
  wrap.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !list.hidden) { e.stopPropagation(); close(true); }
    if ((e.key === "ArrowDown" || e.key === "ArrowUp") && !list.hidden) {
      e.preventDefault();
      const items = [...list.querySelectorAll("a, button")];
      const at = items.indexOf(document.activeElement);
      items[(at + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length].focus();
    }
  });
  wrap.addEventListener("focusout", (e) => { if (!wrap.contains(e.relatedTarget)) close(false); });
  return wrap;
}

function dayStats(stats, id) {
  if (!stats) return h("span", { class: "muted" }, "…");
  const c = stats[id];
  if (!c || !c.total) return h("span", { class: "muted" }, "No attempts");
  return [
    h("span", { class: "ok-text" }, `${c.success} delivered`),
    c.failure ? [h("br"), h("a", { class: "bad-text", href: integrationHref(id, "events") + "?status=failure" }, `${c.failure} failed`)] : null,
  ];
}

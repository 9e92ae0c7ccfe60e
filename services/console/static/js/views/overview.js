// The overview of one integration: its settings, and charts of its publish
// attempts from the summary endpoint (success/failure over time,
// response-time percentiles, counts by event name).

import { h, replace, time } from "../dom.js";
import { api } from "../api.js";
import { setQuery, showError } from "../app.js";
import { percentileChart, seriesChart } from "../charts.js";
import { describeFilter, describeTarget, header, integrationHref } from "./common.js";
import { periodSelect, timeWindow } from "./events.js";

export async function overviewPage(main, ctx) {
  const id = ctx.params[0];
  document.title = `${id} · Event Stream`;
  const integration = await api.get(id);
  const t = describeTarget(integration);
  const period = periodSelect(ctx.query);
  // The overview offers the preset periods only.
  period.querySelector('option[value="custom"]').remove();
  if (!period.value) period.value = "24h";
  const charts = h("div", { id: "overview-charts", "aria-live": "polite" }, h("p", { class: "loading" }, "Loading the summary…"));

  const facts = h("dl", { class: "facts" },
    h("dt", {}, "Type"), h("dd", {}, integration.integration_type === "temporary" ? "Temporary" : "Permanent"),
    h("dt", {}, "Target"), h("dd", { class: "mono" }, `${t.kind}: ${t.text}`),
    h("dt", {}, "Events"), h("dd", {}, describeFilter(integration)),
    integration.starts_at ? [h("dt", {}, "Start date"), h("dd", {}, time(integration.starts_at))] : null,
    integration.ends_at ? [h("dt", {}, "End date"), h("dd", {}, time(integration.ends_at))] : null);

  replace(main, header(integration, "", "Overview"),
    h("section", { class: "panel", "aria-labelledby": "settings-h" }, h("h2", { id: "settings-h" }, "Settings"), facts),
    h("div", { class: "page-head" },
      h("h2", {}, "Publish attempts"),
      h("div", { class: "field" }, h("label", { for: "period", class: "visually-hidden" }, "Time period"), period)),
    charts);

  const load = async () => {
    const q = new URLSearchParams();
    if (period.value !== "24h") q.set("period", period.value);
    setQuery(q);
    const w = timeWindow(q.has("period") ? q : new URLSearchParams({ period: "24h" }));
    const p = new URLSearchParams({ integration_id: id });
    if (w.from) p.set("from", w.from);
    try {
      const sum = await api.summary(p.toString());
      drawSummary(charts, sum, id, q);
    } catch (err) {
      if (err.name === "AbortError") return;
      charts.replaceChildren();
      showError(err, charts);
    }
  };
  period.addEventListener("change", load);
  await load();
}

function drawSummary(el, sum, id, q) {
  const tot = sum.totals || { total: 0, success: 0, failure: 0 };
  const rate = tot.total ? ((100 * tot.success) / tot.total).toFixed(1) + " %" : "—";
  const pct = sum.response_time_ms || {};
  const stat = (label, value, sid) => h("div", { class: "stat", id: sid }, h("span", { class: "label" }, label), h("span", { class: "value" }, value));
  const eventsLink = (status) => {
    const p = new URLSearchParams(q);
    if (status) p.set("status", status);
    const qs = p.toString();
    return integrationHref(id, "events") + (qs ? "?" + qs : "");
  };
  replace(el,
    h("div", { class: "stats" },
      stat("Attempts", String(tot.total), "stat-total"),
      stat("Successful", String(tot.success), "stat-success"),
      stat("Failed", String(tot.failure), "stat-failure"),
      stat("Success rate", rate, "stat-rate"),
      stat("p95 response", pct.p95 != null ? pct.p95 + " ms" : "—", "stat-p95")),
    h("div", { class: "charts" }, seriesChart(sum.series || { buckets: [] }), percentileChart(pct)),
    h("p", { class: "more" },
      h("a", { href: eventsLink("") }, "View these events"),
      tot.failure ? h("a", { href: eventsLink("failure") }, `View the ${tot.failure} failed attempts`) : null),
    (sum.by_event_name || []).length ? [
      h("h2", {}, "By event name"),
      h("div", { class: "table-wrap" }, h("table", { id: "by-event" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Event name"), h("th", { scope: "col", class: "num" }, "Attempts"),
          h("th", { scope: "col", class: "num" }, "Success"), h("th", { scope: "col", class: "num" }, "Failure"))),
        h("tbody", {}, sum.by_event_name.map((n) => h("tr", {},
          h("td", { class: "mono" }, n.event_name), h("td", { class: "num" }, String(n.total)),
          h("td", { class: "num" }, String(n.success)), h("td", { class: "num" }, String(n.failure)))))))] : null);
}

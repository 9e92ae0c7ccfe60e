// View Events: the publish attempts of one integration, filtered by domain
// entity id, status, event name and time period (kept in the URL), paged with
// the API's Link header, each row opening the attempt with its response, and
// a Live switch that appends new attempts as the stream reports them.

import { h, pretty, replace, statusBadge, time } from "../dom.js";
import { api, stream } from "../api.js";
import { notify, openDialog, setQuery, showError } from "../app.js";
import { header } from "./common.js";
import { catalog } from "./form.js";

export const periods = [
  ["1h", "Last hour", 3600e3],
  ["24h", "Last 24 hours", 86400e3],
  ["7d", "Last 7 days", 7 * 86400e3],
  ["30d", "Last 30 days", 30 * 86400e3],
  ["all", "Any time", 0],
  ["custom", "Custom…", 0],
];

// localInput formats an ISO time for a datetime-local input (local time).
export function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// window turns the page's period filter into from/to for the API.
export function timeWindow(q) {
  const period = q.get("period") || "24h";
  if (period === "custom") return { from: q.get("from") || "", to: q.get("to") || "" };
  const p = periods.find(([k]) => k === period);
  if (!p || !p[2]) return { from: "", to: "" };
  return { from: new Date(Date.now() - p[2]).toISOString(), to: "" };
}

export function periodSelect(q) {
  const sel = h("select", { id: "period", name: "period" }, periods.map(([k, label]) =>
    h("option", { value: k, selected: (q.get("period") || "24h") === k }, label)));
  return sel;
}

export async function eventsPage(main, ctx) {
  const id = ctx.params[0];
  document.title = `Events of ${id} · Event Stream`;
  const [integration, cat] = await Promise.all([api.get(id), catalog()]);
  const q = ctx.query;
  // Page size: 50, or the link's own (?limit=, 1 to 1000 like the API).
  const pageSize = Math.min(1000, Math.max(1, parseInt(q.get("limit"), 10) || 50));

  // --- filters
  const entity = h("input", { type: "search", id: "domain_entity_id", name: "domain_entity_id", value: q.get("domain_entity_id") || "", autocomplete: "off", spellcheck: "false" });
  const status = h("select", { id: "status", name: "status" },
    h("option", { value: "" }, "Any status"),
    h("option", { value: "success", selected: q.get("status") === "success" }, "Success"),
    h("option", { value: "failure", selected: q.get("status") === "failure" }, "Failure"));
  const byEntity = {};
  for (const n of cat.event_names) (byEntity[n.split(".")[0]] ||= []).push(n);
  const eventName = h("select", { id: "event_name", name: "event_name" },
    h("option", { value: "" }, "Any event"),
    cat.entity_types.map((et) => h("optgroup", { label: et }, (byEntity[et] || []).map((n) =>
      h("option", { value: n, selected: q.get("event_name") === n }, n)))));
  const period = periodSelect(q);
  const from = h("input", { type: "datetime-local", id: "from", name: "from", step: "1", value: localInput(q.get("from")) });
  const to = h("input", { type: "datetime-local", id: "to", name: "to", step: "1", value: localInput(q.get("to")) });
  const custom = [
    h("div", { class: "field" }, h("label", { for: "from" }, "From"), from),
    h("div", { class: "field" }, h("label", { for: "to" }, "To"), to),
  ];
  const syncPeriod = () => custom.forEach((c) => { c.hidden = period.value !== "custom"; });
  period.addEventListener("change", syncPeriod);
  syncPeriod();
  const filters = h("form", { class: "filters", id: "event-filters", role: "search", "aria-label": "Filter events" },
    h("div", { class: "field" }, h("label", { for: "domain_entity_id" }, "Domain entity ID"), entity),
    h("div", { class: "field" }, h("label", { for: "status" }, "Status"), status),
    h("div", { class: "field" }, h("label", { for: "event_name" }, "Event"), eventName),
    h("div", { class: "field" }, h("label", { for: "period" }, "Time period"), period),
    custom,
    h("button", { type: "submit", class: "btn btn-primary" }, "Apply"),
    h("button", { type: "button", class: "btn", onclick: () => { entity.value = ""; status.value = ""; eventName.value = ""; period.value = "24h"; syncPeriod(); apply(); } }, "Reset"));
  filters.addEventListener("submit", (e) => { e.preventDefault(); apply(); });

  // --- live switch
  const live = h("button", { type: "button", class: "btn", "aria-pressed": "false", id: "live-toggle" }, "Live");
  const download = h("button", { type: "button", class: "btn", id: "export" }, "Export NDJSON");
  const liveState = h("span", { class: "live", role: "status", "aria-live": "polite" });
  let liveCtl = null;

  const errors = h("div");
  const tbody = h("tbody");
  const table = h("table", { id: "events" },
    h("caption", { class: "visually-hidden" }, `Publish attempts of ${id}`),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Event"),
      h("th", { scope: "col" }, "Domain entity ID"),
      h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col" }, "Attempted at"),
      h("th", { scope: "col", class: "num" }, "Response"))),
    tbody);
  const wrap = h("div", { class: "table-wrap" }, table);
  const more = h("button", { type: "button", class: "btn", id: "load-more", hidden: true }, "Load more");
  const shown = h("span", { class: "muted", id: "shown", "aria-live": "polite" });
  let next = null;
  let count = 0;

  replace(main, header(integration, "events", "Events", h("div", { class: "actions" }, liveState, download, live)),
    filters, errors, wrap, h("div", { class: "more" }, more, shown));

  // The live stream takes the filters but neither a time window nor paging.
  const query = (forList = true) => {
    const p = new URLSearchParams({ integration_id: id });
    if (forList) p.set("limit", String(pageSize));
    if (entity.value.trim()) p.set("domain_entity_id", entity.value.trim());
    if (status.value) p.set("status", status.value);
    if (eventName.value) p.set("event_name", eventName.value);
    if (forList) {
      const w = timeWindow(currentQuery());
      if (w.from) p.set("from", w.from);
      if (w.to) p.set("to", w.to);
    }
    return p;
  };
  // currentQuery is the page state as it goes into the URL.
  const currentQuery = () => {
    const p = new URLSearchParams();
    if (entity.value.trim()) p.set("domain_entity_id", entity.value.trim());
    if (status.value) p.set("status", status.value);
    if (eventName.value) p.set("event_name", eventName.value);
    if (period.value !== "24h") p.set("period", period.value);
    if (pageSize !== 50) p.set("limit", String(pageSize));
    if (period.value === "custom") {
      if (from.value) p.set("from", new Date(from.value).toISOString());
      if (to.value) p.set("to", new Date(to.value).toISOString());
    }
    return p;
  };

  const addRows = (rows, atTop) => {
    if (count === 0 && rows.length) tbody.replaceChildren();
    for (const r of rows) {
      const tr = attemptRow(r);
      if (atTop) { tr.classList.add("fresh"); tbody.prepend(tr); } else tbody.append(tr);
      count++;
    }
    if (count === 0) tbody.replaceChildren(h("tr", {}, h("td", { colspan: "5", class: "empty" }, "No events match these filters.")));
    shown.textContent = count ? `${count} attempt${count === 1 ? "" : "s"} shown` : "";
  };

  const load = async (path) => {
    errors.replaceChildren();
    try {
      const page = await api.attempts(path);
      next = page.next;
      more.hidden = !next;
      addRows(page.rows, false);
    } catch (err) {
      if (err.name !== "AbortError") showError(err, errors);
    }
  };
  more.addEventListener("click", async () => { more.disabled = true; await load(next); more.disabled = false; more.focus(); });

  // Export: every attempt matching the filters (not just the pages shown),
  // one JSON object a line, saved as a file by the browser.
  download.addEventListener("click", async () => {
    download.disabled = true;
    try {
      const q = query();
      q.delete("limit");
      const text = await api.exportAttempts(q.toString());
      const n = text.split("\n").filter((l) => l.trim()).length;
      const name = `attempts-${id}.ndjson`;
      const url = URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" }));
      const a = h("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      notify(`Exported ${n} attempt${n === 1 ? "" : "s"} as ${name}.`);
    } catch (err) {
      showError(err, errors);
    } finally {
      download.disabled = false;
    }
  });

  const apply = async () => {
    setQuery(currentQuery());
    count = 0;
    tbody.replaceChildren();
    await load(query().toString());
    if (liveCtl) { stopLive(); startLive(); }
  };

  const startLive = () => {
    liveCtl = new AbortController();
    ctx.signal.addEventListener("abort", () => liveCtl && liveCtl.abort());
    live.setAttribute("aria-pressed", "true");
    replace(liveState, "Connecting…");
    const ctl = liveCtl;
    stream(query(false).toString(), {
      signal: ctl.signal,
      onOpen: () => replace(liveState, h("span", { class: "live-dot", "aria-hidden": "true" }), "Live: new attempts appear at the top"),
      onEvent: (ev) => {
        let row;
        try { row = JSON.parse(ev.data); } catch { return; }
        if (ev.event === "error") { showError(new Error(row.message || "The live stream failed."), errors); return; }
        if (!row || !row.entity_id || row.integration_id !== id) return;
        addRows([row], true);
      },
    }).then(() => {
      if (!ctl.signal.aborted) { replace(liveState, "Live stream ended."); live.setAttribute("aria-pressed", "false"); liveCtl = null; }
    }, (err) => {
      if (err.name === "AbortError") return;
      live.setAttribute("aria-pressed", "false");
      liveCtl = null;
      liveState.replaceChildren();
      showError(err, errors);
    });
  };
  const stopLive = () => {
    if (liveCtl) liveCtl.abort();
    liveCtl = null;
    live.setAttribute("aria-pressed", "false");
    liveState.replaceChildren();
  };
  live.addEventListener("click", () => (liveCtl ? stopLive() : startLive()));

  await load(query().toString());
}

function attemptRow(r) {
  const open = h("button", { type: "button", class: "btn-link mono", "aria-label": `Open attempt of event ${r.entity_id} at ${r.attempted_at}` }, r.entity_id);
  open.addEventListener("click", () => showAttempt(r));
  const code = r.response ? String(r.response.code) : "";
  const ms = r.response_time_ms != null ? `${r.response_time_ms} ms` : "";
  const tr = h("tr", { "data-event": r.entity_id, "data-status": r.status },
    h("td", {}, open, h("span", { class: "cell-sub mono" }, r.event_name)),
    h("td", { class: "mono" }, r.domain_entity_id || "—"),
    h("td", {}, statusBadge(r.status)),
    h("td", {}, time(r.attempted_at)),
    h("td", { class: "num" }, code || (r.target === "s3" ? "S3" : ""), ms ? h("span", { class: "cell-sub" }, ms) : null));
  // A click anywhere on the row opens it too; the button is the keyboard path.
  tr.addEventListener("click", (e) => { if (e.target === tr || e.target.tagName === "TD") showAttempt(r); });
  return tr;
}

function showAttempt(r) {
  const fact = (k, v) => [h("dt", {}, k), h("dd", {}, v ?? "—")];
  openDialog({
    title: "Attempt of " + r.event_name,
    body: [
      h("dl", { class: "facts" },
        fact("Status", statusBadge(r.status)),
        fact("Attempted at", [time(r.attempted_at), " ", h("span", { class: "muted mono" }, r.attempted_at)]),
        fact("Event ID", h("span", { class: "mono" }, r.entity_id)),
        fact("Event name", h("span", { class: "mono" }, r.event_name)),
        fact("Domain entity", h("span", { class: "mono" }, `${r.domain_entity_type || ""} ${r.domain_entity_id || ""}`)),
        fact("Integration", h("span", { class: "mono" }, `${r.integration_id} (${r.integration_type}, ${r.target})`)),
        r.url != null ? fact("URL", h("span", { class: "mono" }, r.url)) : null,
        r.filename != null ? fact("File", h("span", { class: "mono" }, r.filename)) : null,
        fact("Retries remaining", String(r.retries_remaining)),
        fact("Response time", r.response_time_ms != null ? `${r.response_time_ms} ms` : null),
        fact("Response code", r.response ? String(r.response.code) : "No response")),
      r.response ? [h("h3", {}, "Response body"),
        h("pre", { class: "json", tabindex: "0", "aria-label": "Response body" }, r.response.body ? pretty(r.response.body) : "(empty)")] : null,
    ],
  });
}

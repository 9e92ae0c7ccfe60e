// Pieces shared by the per-integration pages: the heading with its section
// tabs, and how a target and a filter are described.

import { h, statusBadge } from "../dom.js";

export const sections = [
  ["", "Overview"],
  ["events", "Events"],
  ["rejected", "Rejected events"],
  ["logs", "Logs"],
  ["edit", "Edit"],
];

export function integrationHref(id, section = "") {
  return "#/i/" + encodeURIComponent(id) + (section ? "/" + section : "");
}

// header is the top of every per-integration page.
export function header(integration, active, title, extra) {
  const id = integration.id;
  return [
    h("p", { class: "crumbs" }, h("a", { href: "#/integrations" }, "Integrations"), " / ", id),
    h("div", { class: "page-head" },
      h("h1", { tabindex: "-1" }, title + " · ", h("span", { class: "mono" }, id)),
      statusBadge(integration.status),
      extra || null),
    h("nav", { "aria-label": "Integration sections" },
      h("ul", { class: "tabs" }, sections.map(([s, label]) =>
        h("li", {}, h("a", { href: integrationHref(id, s), "aria-current": s === active ? "page" : false }, label))))),
  ];
}

export function describeTarget(i) {
  if (i.callback_parameters) return { kind: "Webhook", text: i.callback_parameters.callback_url };
  if (i.s3_parameters) {
    const p = i.s3_parameters;
    return { kind: "S3", text: `s3://${p.bucket}/${p.key_prefix ? p.key_prefix + "/" : ""} (${p.aws_region})` };
  }
  return { kind: "?", text: "" };
}

export function describeFilter(i) {
  const f = i.filter_conditions || {};
  const parts = [];
  if (f.entity_filter && f.entity_filter.length) parts.push(f.entity_filter.map((e) => e + ".*").join(", "));
  if (f.event_filter && f.event_filter.length) parts.push(f.event_filter.join(", "));
  return parts.length ? parts.join(", ") : "All events";
}

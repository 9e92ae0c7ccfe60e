// Small DOM helpers. Text always goes in through textContent (never HTML
// strings), so nothing an API returns can become markup.

// h builds an element: h("a", {href: "#/x", class: "btn"}, "text", child).
// Attributes starting with "on" become event listeners; false/null/undefined
// attributes are left out; children may be strings, nodes, arrays or null.
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "dataset") {
      Object.assign(el.dataset, v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// s builds an SVG element.
export const s = (tag, attrs, ...children) => h("svg:" + tag, attrs, ...children);

// replace empties el and fills it with children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// fmtTime shows an API timestamp in the user's time zone, with the UTC value
// as a tooltip (the API answers in UTC).
export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const d = new Date(iso);
  if (isNaN(d)) return h("span", {}, iso);
  return h("time", { datetime: iso, title: iso }, fmtTime(d));
}

export function fmtTime(d) {
  return d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

// badge renders a status as a coloured pill with its text (colour is never the
// only signal).
export function badge(text, kind) {
  return h("span", { class: "badge badge-" + kind }, text);
}

export function statusBadge(status) {
  switch (String(status).toLowerCase()) {
    case "running": return badge("Active", "ok");
    case "stopped": return badge("Paused", "idle");
    case "success": return badge("Success", "ok");
    case "failure": return badge("Failure", "bad");
    default: return badge(String(status), "info");
  }
}

// pretty returns JSON text indented for reading; text that is not JSON is
// returned as is.
export function pretty(text) {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

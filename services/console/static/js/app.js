// The console's shell: sign-in, routing (everything after "#", so views and
// their filters can be shared as links and never reach the server), notices
// and dialogs. Each page is a module under views/.

import { h, replace } from "./dom.js";
import { api, claims, clearToken, setToken, token, unauthorized } from "./api.js";
import { integrationsPage } from "./views/integrations.js";
import { formPage } from "./views/form.js";
import { eventsPage } from "./views/events.js";
import { rejectedPage } from "./views/rejected.js";
import { logsPage } from "./views/logs.js";
import { overviewPage } from "./views/overview.js";

const main = document.getElementById("main");
let current = null; // AbortController of the page on screen

// A token handed over in the fragment (/console/#token=<jwt>) is stored and
// removed from the address bar at once, so it is neither kept in the history
// nor copied along with the URL.
function takeFragmentToken() {
  const m = location.hash.match(/^#(?:.*[&?])?token=([^&]+)/);
  if (!m) return;
  setToken(decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search + "#/integrations");
}

// parseRoute splits "#/i/erp-1/events?status=failure" into its parts.
export function parseRoute(hash = location.hash) {
  const raw = hash.replace(/^#/, "") || "/integrations";
  const [path, qs] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(qs || "") };
}

// setQuery records a page's filters in the address bar without reloading the
// page, so the current view can be bookmarked or shared.
export function setQuery(query) {
  const { parts } = parseRoute();
  const qs = query.toString();
  const hash = "#/" + parts.map(encodeURIComponent).join("/") + (qs ? "?" + qs : "");
  history.replaceState(null, "", location.pathname + location.search + hash);
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

// --- notices ------------------------------------------------------------

const notices = document.getElementById("notices");
// Notices live for the page they were raised on and the next one (an action
// that navigates, like Create, reports on the page it lands on).
let pageSeq = 0;
function addNotice(n) {
  n.dataset.seq = String(pageSeq);
  notices.replaceChildren(n);
}
function expireNotices() {
  for (const n of [...notices.children]) if (Number(n.dataset.seq) < pageSeq - 1) n.remove();
}

export function notify(message, kind = "ok") {
  const close = h("button", { type: "button", class: "btn btn-small", "aria-label": "Dismiss" }, "×");
  const n = h("div", { class: "notice notice-" + kind }, h("p", {}, message), close);
  close.addEventListener("click", () => n.remove());
  addNotice(n);
  if (kind === "ok") setTimeout(() => n.remove(), 8000);
}

// showError tells the user what went wrong in the API's own words.
export function showError(err, where) {
  if (err && err.name === "AbortError") return;
  console.error(err);
  const msg = (err && err.message) || String(err);
  const rid = err && err.requestId ? h("span", { class: "rid" }, "Request ID: " + err.requestId) : null;
  if (where) {
    const box = h("div", { class: "form-error", role: "alert", tabindex: "-1" }, h("strong", {}, "Error: "), msg, rid);
    replace(where, box);
    box.focus();
    return;
  }
  const close = h("button", { type: "button", class: "btn btn-small", "aria-label": "Dismiss" }, "×");
  const n = h("div", { class: "notice notice-error", role: "alert" }, h("p", {}, h("strong", {}, "Error: "), msg, rid), close);
  close.addEventListener("click", () => n.remove());
  addNotice(n);
}

export function clearNotices() { notices.replaceChildren(); }

// --- dialogs ------------------------------------------------------------

const dialog = document.getElementById("dialog");

// openDialog shows a modal dialog and resolves with the value of the button
// pressed (null for Escape). Focus goes into the dialog and back to where it
// was when the dialog closes.
export function openDialog({ title, body, actions = [{ label: "Close", value: null }], wide }) {
  const opener = document.activeElement;
  replace(document.getElementById("dialog-title"), title);
  replace(document.getElementById("dialog-body"), body);
  const bar = document.getElementById("dialog-actions");
  dialog.classList.toggle("wide", !!wide);
  return new Promise((resolve) => {
    let result = null;
    const done = () => {
      dialog.removeEventListener("close", done);
      if (opener && document.contains(opener)) opener.focus();
      resolve(result);
    };
    replace(bar, actions.map((a) => h("button", {
      type: "button", class: "btn " + (a.kind ? "btn-" + a.kind : ""), "data-value": a.value ?? "",
      onclick: () => { result = a.value; dialog.close(); },
    }, a.label)));
    dialog.addEventListener("close", done);
    dialog.showModal();
    const focus = bar.querySelector("[data-autofocus]") || bar.querySelector("button");
    if (focus) focus.focus();
  });
}

export async function confirmDialog(title, text, label, kind = "danger") {
  const v = await openDialog({
    title, body: h("p", {}, text),
    actions: [{ label: "Cancel", value: null }, { label, kind, value: "yes" }],
  });
  return v === "yes";
}

// --- pages --------------------------------------------------------------

function signinPage(main, ctx) {
  document.title = "Sign in · Event Stream";
  const input = h("textarea", { id: "token", name: "token", required: true, autocomplete: "off", spellcheck: "false", "aria-describedby": "token-hint" });
  const errors = h("div");
  const form = h("form", { class: "stack", novalidate: true },
    errors,
    h("div", { class: "field" },
      h("label", { for: "token" }, "Access token"),
      h("span", { class: "hint", id: "token-hint" }, "A bearer token (JWT) for your tenant. It is kept in this browser tab only and sent only in the Authorization header."),
      input),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "Sign in")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!input.value.trim()) {
      showError(new Error("Paste a token to sign in."), errors);
      return;
    }
    setToken(input.value);
    try {
      await api.list();
      navigate(ctx.query.get("next") || "#/integrations");
    } catch (err) {
      clearToken();
      showError(err, errors);
    }
  });
  replace(main, h("section", { class: "panel signin" },
    h("h1", { tabindex: "-1" }, "Sign in to the Event Stream console"),
    ctx.query.get("expired") ? h("p", { class: "form-error", role: "alert" }, "Your token was refused (expired or invalid). Sign in again.") : null,
    h("p", { class: "muted" }, "Run ", h("code", {}, "make run"), " and open the console link it prints, or paste a token below."),
    form));
}

const routes = [
  { match: ["signin"], page: signinPage, public: true },
  { match: ["integrations"], page: integrationsPage, nav: "integrations" },
  { match: ["new"], page: formPage, nav: "integrations" },
  { match: ["i", "*"], page: overviewPage, nav: "integrations" },
  { match: ["i", "*", "events"], page: eventsPage, nav: "integrations" },
  { match: ["i", "*", "rejected"], page: rejectedPage, nav: "integrations" },
  { match: ["i", "*", "logs"], page: logsPage, nav: "integrations" },
  { match: ["i", "*", "edit"], page: formPage, nav: "integrations" },
];

function findRoute(parts) {
  for (const r of routes) {
    if (r.match.length !== parts.length) continue;
    const params = [];
    if (r.match.every((m, i) => (m === "*" ? (params.push(parts[i]), true) : m === parts[i]))) return { route: r, params };
  }
  return null;
}

function showSession() {
  const signedIn = !!token();
  document.getElementById("session").hidden = !signedIn;
  document.getElementById("topnav").hidden = !signedIn;
  const c = claims();
  document.getElementById("tenant-name").textContent = signedIn ? "Tenant: " + (c.tenant || "unknown") : "";
}

async function render() {
  if (current) current.abort();
  current = new AbortController();
  pageSeq++;
  expireNotices();
  const { parts, query } = parseRoute();
  let found = findRoute(parts);
  if (!found) {
    location.replace("#/integrations");
    return;
  }
  if (!found.route.public && !token()) {
    const next = location.hash && !location.hash.startsWith("#/signin") ? location.hash : "";
    history.replaceState(null, "", "#/signin" + (next ? "?next=" + encodeURIComponent(next) : ""));
    found = findRoute(["signin"]);
  }
  showSession();
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === found.route.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const ctx = { params: found.params, query: parseRoute().query, signal: current.signal, parts };
  main.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  try {
    await found.route.page(main, ctx);
  } catch (err) {
    if (err.name === "AbortError") return;
    if (err.status === 401) return; // on its way to the sign-in page, which says why
    replace(main, h("h1", { tabindex: "-1" }, "Something went wrong"));
    showError(err);
  }
  if (current.signal.aborted) return;
  // Move focus to the page's heading so keyboard and screen-reader users
  // start at the top of the new page.
  const h1 = main.querySelector("h1");
  if (h1 && !main.contains(document.activeElement)) {
    h1.setAttribute("tabindex", "-1");
    h1.focus({ preventScroll: true });
  }
  document.body.dataset.page = found.route.match.filter((m) => m !== "*").join("-");
  document.body.dataset.ready = "true";
}

unauthorized.addEventListener("unauthorized", () => {
  clearToken();
  // Back to where the user was once signed in again.
  if (!location.hash.startsWith("#/signin")) location.hash = "#/signin?expired=1&next=" + encodeURIComponent(location.hash);
});

// The skip link must not change the fragment: that is the router's.
document.getElementById("skip-link").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});

document.getElementById("sign-out").addEventListener("click", () => {
  clearToken();
  clearNotices();
  location.hash = "#/signin";
});

window.addEventListener("hashchange", () => {
  takeFragmentToken();
  delete document.body.dataset.ready;
  render();
});

takeFragmentToken();
render();

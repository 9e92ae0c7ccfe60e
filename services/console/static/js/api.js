// The public APIs, called with the signed-in user's token. The token lives in
// sessionStorage (gone when the tab closes) and only ever travels in the
// Authorization header: never in a URL the server sees.

const TOKEN_KEY = "eventstream.console.token";
export const CONFIG = "/api/v1/org/integrations/eventstream";
export const EVENTS = "/api/v1/org/integrations/published-events";

export function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
export function setToken(t) { sessionStorage.setItem(TOKEN_KEY, t.trim()); }
export function clearToken() { sessionStorage.removeItem(TOKEN_KEY); }

// claims decodes the token's payload for display (the tenant name). It is not
// verified here; the APIs verify it on every call.
export function claims(t = token()) {
  try {
    const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""));
    return JSON.parse(json);
  } catch {
    return {};
  }
}

// ApiError carries what the API said: its message and request id are shown
// to the user as they are.
export class ApiError extends Error {
  constructor(status, body, fallback) {
    super((body && body.message) || fallback || `The request failed (HTTP ${status}).`);
    this.status = status;
    this.code = body && body.error_code;
    this.requestId = body && body.request_id;
  }
}

// Fired when the API refuses the token (401), so the app can ask for a new one.
export const unauthorized = new EventTarget();

// request sends one call and returns {body, headers, status}; non-2xx answers
// throw an ApiError.
export async function request(method, path, { body, signal, accept } = {}) {
  const headers = { Authorization: "Bearer " + token(), Accept: accept || "application/json" };
  const init = { method, headers, signal, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, null, "The server could not be reached: " + e.message);
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, typeof data === "object" ? data : null,
      resp.status === 501 ? "This part of Event Stream is not available in this deployment." : null);
    if (resp.status === 401) unauthorized.dispatchEvent(new CustomEvent("unauthorized", { detail: err }));
    throw err;
  }
  return { body: data, text, headers: resp.headers, status: resp.status };
}

// nextLink returns the URL of rel="next" in a Link header, if any, as a
// same-origin path (paging links must never leave the origin).
export function nextLink(headers) {
  const link = headers.get("Link");
  if (!link) return null;
  for (const part of link.split(",")) {
    const m = part.match(/<([^>]*)>\s*;\s*rel="?next"?/i);
    if (m) {
      const u = new URL(m[1], location.origin);
      if (u.origin !== location.origin) return null;
      return u.pathname + u.search;
    }
  }
  return null;
}

const id = (s) => encodeURIComponent(s);

export const api = {
  list: () => request("GET", CONFIG).then((r) => r.body.integrations || []),
  get: (i) => request("GET", `${CONFIG}/${id(i)}`).then((r) => r.body),
  create: (body) => request("POST", CONFIG, { body }).then((r) => r.body),
  update: (i, body) => request("PATCH", `${CONFIG}/${id(i)}`, { body }).then((r) => r.body),
  remove: (i) => request("DELETE", `${CONFIG}/${id(i)}`),
  start: (i) => request("POST", `${CONFIG}/${id(i)}/_start`).then((r) => r.body),
  stop: (i) => request("POST", `${CONFIG}/${id(i)}/_stop`).then((r) => r.body),
  logs: (i) => request("GET", `${CONFIG}/${id(i)}/logs`).then((r) => r.body.entries || []),
  rejected: (i) => request("GET", `${CONFIG}/${id(i)}/rejected_events`).then((r) => r.body.rejected_events || []),
  rejectedEvent: (i, e) => request("GET", `${CONFIG}/${id(i)}/rejected_events/${id(e)}`),
  deleteRejected: (i, e) => request("DELETE", `${CONFIG}/${id(i)}/rejected_events/${id(e)}`),
  retryRejected: (i, e) => request("POST", `${CONFIG}/${id(i)}/rejected_events/${id(e)}/_retry`),
  // attempts returns one page of publish attempts and the path of the next.
  attempts: async (pathOrQuery) => {
    const path = pathOrQuery.startsWith("/") ? pathOrQuery : `${EVENTS}?${pathOrQuery}`;
    const r = await request("GET", path);
    return { rows: Array.isArray(r.body) ? r.body : [], next: nextLink(r.headers) };
  },
  // exportAttempts returns every matching attempt as NDJSON text (no paging).
  exportAttempts: (query) => request("GET", `${EVENTS}?${query}`, { accept: "application/x-ndjson" }).then((r) => r.text),
  summary: (query) => request("GET", `${EVENTS}/summary?${query}`).then((r) => r.body),
};

// stream reads the Server-Sent Events of the live tail with fetch, because
// EventSource cannot send an Authorization header (and the token must not go
// into the URL). onEvent gets each event's {event, data, id}. It resolves when
// the stream ends or signal aborts; it rejects with an ApiError on a refusal.
export async function stream(query, { signal, onEvent, onOpen }) {
  const resp = await fetch(`${EVENTS}/stream?${query}`, {
    headers: { Authorization: "Bearer " + token(), Accept: "text/event-stream" },
    signal, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
  });
  if (!resp.ok) {
    let body = null;
    try { body = await resp.json(); } catch { /* not JSON */ }
    if (resp.status === 401) unauthorized.dispatchEvent(new CustomEvent("unauthorized"));
    throw new ApiError(resp.status, body);
  }
  if (onOpen) onOpen();
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let ev = { event: "message", data: [], id: "" };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    // Lines end with \n, \r\n or \r (the SSE grammar).
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const sep = buf[nl] === "\r" && buf[nl + 1] === "\n" ? 2 : 1;
      if (buf[nl] === "\r" && nl + 1 === buf.length) break; // a \r\n may be split across chunks
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + sep);
      if (line === "") {
        if (ev.data.length) onEvent({ event: ev.event, data: ev.data.join("\n"), id: ev.id });
        ev = { event: "message", data: [], id: "" };
        continue;
      }
      if (line.startsWith(":")) continue; // comment / keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? "" : line.slice(colon + 1);
      if (val.startsWith(" ")) val = val.slice(1);
      if (field === "data") ev.data.push(val);
      else if (field === "event") ev.event = val;
      else if (field === "id") ev.id = val;
    }
  }
}

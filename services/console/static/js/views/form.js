// New Integration and Edit Integration Details. Edit offers only what the API
// lets change (target parameters and filters) and follows the seed's update
// workflow for the user: stop, wait until stopped, update, start again.

import { h, replace } from "../dom.js";
import { api } from "../api.js";
import { navigate, notify, showError } from "../app.js";
import { header } from "./common.js";

let catalogPromise = null;
// catalog is the event names and entity types the APIs accept, served by the
// console from the shared registry.
export function catalog() {
  if (!catalogPromise) {
    catalogPromise = fetch("events.json", { cache: "no-cache" }).then((r) => {
      if (!r.ok) throw new Error("Loading the list of events failed (HTTP " + r.status + ").");
      return r.json();
    });
    catalogPromise.catch(() => { catalogPromise = null; });
  }
  return catalogPromise;
}

const field = (id, label, input, hint) => h("div", { class: "field" },
  h("label", { for: id }, label),
  hint ? h("span", { class: "hint", id: id + "-hint" }, hint) : null,
  input);

const text = (id, attrs = {}) => h("input", { type: "text", id, name: id, autocomplete: "off", spellcheck: "false", ...attrs });

// toISO turns a datetime-local value (the user's local time) into RFC 3339 UTC.
function toISO(v) {
  if (!v) return undefined;
  const d = new Date(v);
  if (isNaN(d)) throw new Error("Not a valid date: " + v);
  return d.toISOString();
}

export async function formPage(main, ctx) {
  const editing = ctx.parts[0] === "i";
  const id = ctx.params[0];
  const [cat, existing] = await Promise.all([catalog(), editing ? api.get(id) : null]);
  document.title = (editing ? `Edit ${id}` : "New Integration") + " · Event Stream";

  const errors = h("div", { "aria-live": "assertive" });
  const form = h("form", { class: "stack", novalidate: true, id: "integration-form" });
  const readOnly = editing && existing.integration_type === "temporary";

  // --- Integration details
  const details = h("fieldset", {}, h("legend", {}, "Integration Details"));
  let typeInputs = [];
  const startsAt = h("input", { type: "datetime-local", id: "starts_at", name: "starts_at", step: "1", "aria-describedby": "starts_at-hint" });
  const endsAt = h("input", { type: "datetime-local", id: "ends_at", name: "ends_at", step: "1", "aria-describedby": "ends_at-hint" });
  const endsField = field("ends_at", "End date", endsAt, "Required for a temporary integration: it receives the events published up to this time, then stops.");
  if (!editing) {
    const idInput = text("id", { required: true, maxlength: "50", pattern: "[a-z0-9-]+", "aria-describedby": "id-hint" });
    typeInputs = ["permanent", "temporary"].map((t) => h("input", { type: "radio", name: "integration_type", id: "type-" + t, value: t, checked: t === "permanent" }));
    details.append(
      field("id", "Integration ID", idInput, "Unique; 1 to 50 lowercase letters, digits and dashes, e.g. erp-1."),
      h("fieldset", { class: "plain" }, h("legend", {}, "Integration Type"),
        h("div", { class: "radios" },
          h("label", { for: "type-permanent" }, typeInputs[0], "Permanent (no end date)"),
          h("label", { for: "type-temporary" }, typeInputs[1], "Temporary (from a start date to an end date)"))),
      h("div", { class: "row" },
        field("starts_at", "Start date", startsAt, "Optional for a permanent integration (replays events from then); must not be in the future."),
        endsField));
    const syncType = () => { endsField.hidden = !typeInputs[1].checked; };
    typeInputs.forEach((r) => r.addEventListener("change", syncType));
    syncType();
  } else {
    details.append(h("dl", { class: "facts" },
      h("dt", {}, "Integration ID"), h("dd", { class: "mono" }, existing.id),
      h("dt", {}, "Type"), h("dd", {}, existing.integration_type === "temporary" ? "Temporary" : "Permanent"),
      existing.starts_at ? [h("dt", {}, "Start date"), h("dd", {}, existing.starts_at)] : null,
      existing.ends_at ? [h("dt", {}, "End date"), h("dd", {}, existing.ends_at)] : null),
    h("p", { class: "hint" }, readOnly
      ? "Temporary integrations cannot be changed."
      : "The ID, type and dates cannot be changed. Saving pauses the integration, updates it and starts it again if it was active."));
  }

  // --- Events
  const f = (existing && existing.filter_conditions) || {};
  const hasFilter = !!((f.event_filter && f.event_filter.length) || (f.entity_filter && f.entity_filter.length));
  const allRadio = h("input", { type: "radio", name: "events_mode", id: "events-all", value: "all", checked: !hasFilter });
  const someRadio = h("input", { type: "radio", name: "events_mode", id: "events-some", value: "some", checked: hasFilter });
  const byEntity = {};
  for (const n of cat.event_names) (byEntity[n.split(".")[0]] ||= []).push(n);
  const entityBoxes = {};
  const eventBoxes = {};
  const groups = h("div", { class: "event-groups", id: "event-groups" }, cat.entity_types.map((et) => {
    const names = byEntity[et] || [];
    const eb = h("input", { type: "checkbox", id: "entity-" + et, name: "entity_filter", value: et, checked: (f.entity_filter || []).includes(et) });
    entityBoxes[et] = eb;
    const items = names.map((n) => {
      const cb = h("input", { type: "checkbox", id: "event-" + n, name: "event_filter", value: n, checked: (f.event_filter || []).includes(n) });
      eventBoxes[n] = cb;
      return h("li", {}, h("label", { class: "check", for: "event-" + n }, cb, h("span", { class: "mono" }, n)));
    });
    const sync = () => { for (const n of names) { eventBoxes[n].disabled = eb.checked; if (eb.checked) eventBoxes[n].checked = true; } };
    eb.addEventListener("change", () => { if (!eb.checked) for (const n of names) eventBoxes[n].checked = false; sync(); });
    sync();
    return h("div", { class: "event-group", role: "group", "aria-labelledby": "entity-label-" + et },
      h("label", { class: "check", for: "entity-" + et, id: "entity-label-" + et }, eb, h("span", {}, et, h("span", { class: "hint" }, ` all ${names.length} event${names.length === 1 ? "" : "s"}`))),
      h("ul", {}, items));
  }));
  const syncMode = () => { groups.hidden = !someRadio.checked; };
  allRadio.addEventListener("change", syncMode);
  someRadio.addEventListener("change", syncMode);
  syncMode();
  const eventsSet = h("fieldset", {}, h("legend", {}, "Events"),
    h("p", { class: "hint" }, "Pick a whole entity to receive all its events, or single events. An event is delivered if its name or its entity is selected."),
    h("div", { class: "radios" },
      h("label", { for: "events-all" }, allRadio, "All events"),
      h("label", { for: "events-some" }, someRadio, "Selected entities and events")),
    groups);

  // --- Target
  const cp = (existing && existing.callback_parameters) || {};
  const sp = (existing && existing.s3_parameters) || {};
  const kind = existing ? (existing.s3_parameters ? "s3" : "webhook") : "webhook";
  const webhookRadio = h("input", { type: "radio", name: "target", id: "target-webhook", value: "webhook", checked: kind === "webhook", disabled: editing });
  const s3Radio = h("input", { type: "radio", name: "target", id: "target-s3", value: "s3", checked: kind === "s3", disabled: editing });
  const callbackURL = h("input", { type: "url", id: "callback_url", name: "callback_url", autocomplete: "off", value: cp.callback_url || "", placeholder: "https://erp.example.com/events" });
  const apiKey = h("input", { type: "password", id: "api_key", name: "api_key", autocomplete: "new-password", value: cp.api_key || "", "aria-describedby": "api_key-hint" });
  const signing = h("input", { type: "password", id: "signing_secret", name: "signing_secret", autocomplete: "new-password", "aria-describedby": "signing_secret-hint" });
  const webhookFields = h("div", { id: "webhook-fields" },
    field("callback_url", "Callback URL", callbackURL),
    field("api_key", "API Key", apiKey, editing
      ? "Sent as Authorization: Bearer <API key>. Shown redacted; leave it as is to keep the stored key, or type a new one. An empty field removes the key."
      : "Sent as Authorization: Bearer <API key> with every event."),
    field("signing_secret", "Signing secret (optional)", signing, editing
      ? "Never shown. Leave empty to keep the stored one (if any); type a new one to replace it."
      : "Signs every delivery with Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature): whsec_ plus base64, or 16 to 256 characters."));
  const s3 = {
    aws_access_key_id: text("aws_access_key_id", { value: sp.aws_access_key_id || "" }),
    aws_secret_access_key: h("input", { type: "password", id: "aws_secret_access_key", name: "aws_secret_access_key", autocomplete: "new-password", value: sp.aws_secret_access_key || "", "aria-describedby": "aws_secret_access_key-hint" }),
    aws_region: text("aws_region", { value: sp.aws_region || "", placeholder: "us-east-1" }),
    bucket: text("bucket", { value: sp.bucket || "" }),
    key_prefix: text("key_prefix", { value: sp.key_prefix || "", "aria-describedby": "key_prefix-hint" }),
  };
  const s3Fields = h("div", { id: "s3-fields" },
    h("div", { class: "row" },
      field("aws_access_key_id", "AWS Access Key", s3.aws_access_key_id),
      field("aws_secret_access_key", "AWS Secret Key", s3.aws_secret_access_key, editing ? "Shown redacted; leave it to keep the stored key." : "Stored encrypted; never shown again.")),
    h("div", { class: "row" },
      field("aws_region", "AWS Region", s3.aws_region),
      field("bucket", "S3 Bucket Name", s3.bucket)),
    field("key_prefix", "Key Prefix", s3.key_prefix, "Optional. Files are written as s3://bucket/prefix/tenant/<time>-data-<random>.export."));
  const syncTarget = () => { webhookFields.hidden = !webhookRadio.checked; s3Fields.hidden = !s3Radio.checked; };
  webhookRadio.addEventListener("change", syncTarget);
  s3Radio.addEventListener("change", syncTarget);
  syncTarget();
  const targetSet = h("fieldset", {}, h("legend", {}, "Integration Target"),
    h("div", { class: "radios" },
      h("label", { for: "target-webhook" }, webhookRadio, "Webhook"),
      h("label", { for: "target-s3" }, s3Radio, "AWS S3 bucket")),
    webhookFields, s3Fields);

  const submit = h("button", { type: "submit", class: "btn btn-primary", disabled: readOnly }, editing ? "Save changes" : "Create");
  form.append(errors, details, eventsSet, targetSet,
    h("div", { class: "form-actions" }, submit,
      h("a", { class: "btn", href: editing ? `#/i/${encodeURIComponent(id)}` : "#/integrations" }, "Cancel")));
  if (readOnly) for (const el of form.querySelectorAll("input")) el.disabled = true;

  const filterConditions = () => {
    if (allRadio.checked) return editing ? {} : undefined;
    const entity = Object.values(entityBoxes).filter((b) => b.checked).map((b) => b.value);
    const event = Object.values(eventBoxes).filter((b) => b.checked && !b.disabled).map((b) => b.value);
    if (!entity.length && !event.length) throw new Error("Select at least one entity or event, or choose All events.");
    const out = {};
    if (event.length) out.event_filter = event;
    if (entity.length) out.entity_filter = entity;
    return out;
  };
  const target = () => {
    if (webhookRadio.checked) {
      const p = { callback_url: callbackURL.value.trim() };
      if (apiKey.value) p.api_key = apiKey.value;
      if (signing.value) p.signing_secret = signing.value;
      return { callback_parameters: p };
    }
    const p = {};
    for (const [k, el] of Object.entries(s3)) if (el.value.trim() || k !== "key_prefix") p[k] = el.value.trim();
    return { s3_parameters: p };
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    errors.replaceChildren();
    submit.disabled = true;
    try {
      if (!editing) {
        const body = { id: form.elements.id.value.trim(), integration_type: typeInputs[1].checked ? "temporary" : "permanent", ...target() };
        const s = toISO(startsAt.value);
        if (s) body.starts_at = s;
        if (typeInputs[1].checked) {
          const en = toISO(endsAt.value);
          if (en) body.ends_at = en;
        }
        const fc = filterConditions();
        if (fc) body.filter_conditions = fc;
        const created = await api.create(body);
        notify(`Created ${created.id}; it is ${created.status === "running" ? "active" : created.status}.`);
        navigate("#/integrations");
      } else {
        const body = { ...target(), filter_conditions: filterConditions() };
        await saveEdit(existing, body);
      }
    } catch (err) {
      submit.disabled = false;
      showError(err, errors);
    }
  });

  replace(main,
    editing ? header(existing, "edit", "Edit") : [
      h("p", { class: "crumbs" }, h("a", { href: "#/integrations" }, "Integrations"), " / New"),
      h("h1", { tabindex: "-1" }, "New Integration")],
    form);
}

// saveEdit follows the API's update workflow: stop, wait until stopped,
// PATCH, start again if it was running. If the PATCH fails the integration is
// started again anyway, so a refused change does not leave it paused.
async function saveEdit(existing, body) {
  const id = existing.id;
  const wasRunning = existing.status === "running";
  if (wasRunning) {
    await api.stop(id);
    for (let i = 0; ; i++) {
      const cur = await api.get(id);
      if (cur.status === "stopped") break;
      if (i >= 20) throw new Error(`${id} did not stop; nothing was changed.`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  let patchErr = null;
  try {
    await api.update(id, body);
  } catch (err) {
    patchErr = err;
  }
  if (wasRunning) await api.start(id);
  if (patchErr) throw patchErr;
  notify(wasRunning ? `Saved ${id}. It was paused for the update and is active again.` : `Saved ${id}. It stays paused.`);
  navigate(`#/i/${encodeURIComponent(id)}`);
}

// Hand-written SVG charts (no library): stacked success/failure bars over time
// and horizontal bars for response-time percentiles. Each chart carries a text
// summary for screen readers; the numbers are also on the page as text.

import { fmtTime, h, s } from "./dom.js";

const W = 640;
const H = 220;
const PAD = { l: 44, r: 10, t: 10, b: 34 };

function niceMax(v) {
  if (v <= 4) return Math.max(v, 1);
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// tickLabel names a bucket: a date for day buckets, a time for short
// windows, both when the window spans more than half a day.
function tickLabel(d, bucketSeconds, spanSeconds) {
  if (bucketSeconds >= 86400) return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  if (spanSeconds >= 43200) return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

// seriesChart draws buckets [{start, success, failure}] as stacked bars.
export function seriesChart(series) {
  const buckets = series.buckets || [];
  const max = niceMax(Math.max(0, ...buckets.map((b) => b.success + b.failure)));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const bw = buckets.length ? iw / buckets.length : iw;
  const y = (v) => PAD.t + ih - (v / max) * ih;
  const kids = [];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    kids.push(s("line", { class: "grid", x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }));
    kids.push(s("text", { class: "tick", x: PAD.l - 6, y: y(v) + 3, "text-anchor": "end" }, Number.isInteger(v) ? String(v) : v.toFixed(1)));
  }
  buckets.forEach((b, i) => {
    const x = PAD.l + i * bw + Math.min(1, bw * 0.1);
    const w = Math.max(1, bw - 2 * Math.min(1, bw * 0.1));
    const label = `${fmtTime(new Date(b.start))}: ${b.success} success, ${b.failure} failure`;
    if (b.success) kids.push(s("rect", { class: "bar-ok", x, width: w, y: y(b.success), height: y(0) - y(b.success) }, s("title", {}, label)));
    if (b.failure) kids.push(s("rect", { class: "bar-bad", x, width: w, y: y(b.success + b.failure), height: y(0) - y(b.failure) }, s("title", {}, label)));
  });
  kids.push(s("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: y(0), y2: y(0) }));
  const ticks = buckets.length <= 1 ? [0] : [0, Math.floor((buckets.length - 1) / 2), buckets.length - 1];
  for (const i of new Set(ticks)) {
    if (!buckets[i]) continue;
    const x = PAD.l + i * bw + bw / 2;
    const anchor = i === 0 ? "start" : i === buckets.length - 1 ? "end" : "middle";
    kids.push(s("text", { class: "tick", x: anchor === "start" ? PAD.l : anchor === "end" ? W - PAD.r : x, y: H - PAD.b + 16, "text-anchor": anchor },
      tickLabel(new Date(buckets[i].start), series.bucket_seconds, buckets.length * series.bucket_seconds)));
  }
  const ok = buckets.reduce((a, b) => a + b.success, 0);
  const bad = buckets.reduce((a, b) => a + b.failure, 0);
  const summary = `Attempts over time in ${buckets.length} buckets of ${humanSeconds(series.bucket_seconds)}: ${ok} successful, ${bad} failed.`;
  return h("figure", { class: "chart", id: "chart-series" },
    h("figcaption", {}, "Success and failure over time"),
    s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary }, kids),
    h("div", { class: "legend" },
      h("span", {}, h("span", { class: "swatch swatch-ok" }), "Success"),
      h("span", {}, h("span", { class: "swatch swatch-bad" }), "Failure"),
      h("span", {}, `Bucket: ${humanSeconds(series.bucket_seconds)}`)));
}

// percentileChart draws p50/p95/p99 response times as horizontal bars.
export function percentileChart(p) {
  const rows = [["p50", p.p50], ["p95", p.p95], ["p99", p.p99]];
  const have = rows.filter(([, v]) => v != null);
  const w = 300;
  const rowH = 38;
  const max = niceMax(Math.max(1, ...have.map(([, v]) => v)));
  const kids = [];
  rows.forEach(([k, v], i) => {
    const y = 10 + i * rowH;
    kids.push(s("text", { class: "bar-label", x: 0, y: y + 16 }, k));
    const bw = v == null ? 0 : Math.max(2, ((w - 110) * v) / max);
    kids.push(s("rect", { class: "bar-p", x: 36, y, width: bw, height: 22, rx: 3 }));
    kids.push(s("text", { class: "bar-label", x: 42 + bw, y: y + 16 }, v == null ? "no data" : `${v} ms`));
  });
  const summary = have.length ? "Response time percentiles: " + rows.map(([k, v]) => `${k} ${v == null ? "no data" : v + " ms"}`).join(", ") + "."
    : "No response times in this period.";
  return h("figure", { class: "chart", id: "chart-percentiles" },
    h("figcaption", {}, "Response time"),
    s("svg", { viewBox: `0 0 ${w} ${10 + rows.length * rowH}`, role: "img", "aria-label": summary }, kids),
    h("div", { class: "legend" }, h("span", {}, "Webhook response times (S3 uploads have none)")));
}

export function humanSeconds(sec) {
  if (!sec) return "—";
  if (sec % 86400 === 0) return `${sec / 86400} day${sec === 86400 ? "" : "s"}`;
  if (sec % 3600 === 0) return `${sec / 3600} hour${sec === 3600 ? "" : "s"}`;
  if (sec % 60 === 0) return `${sec / 60} minute${sec === 60 ? "" : "s"}`;
  return `${sec} s`;
}

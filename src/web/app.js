// banlight's page: draws what /api/stream sends (the panel's own frames and
// the status), and the chart and recent events from /api/history and
// /api/recent. Hand-written, no framework: it must build with cargo alone
// and load from a Pi that has no Internet. Text from the daemon goes in via
// textContent only.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

// ---- the panel ----------------------------------------------------------

// Segment bits 0bPGFEDCBA, as the TM1637 takes them: A top, B upper right,
// C lower right, D bottom, E lower left, F upper left, G middle, P point.
const SEGMENTS = [
  ["a", "14,4 46,4 50,8 46,12 14,12 10,8"],
  ["b", "52,10 56,14 56,46 52,50 48,46 48,14"],
  ["c", "52,50 56,54 56,86 52,90 48,86 48,54"],
  ["d", "14,88 46,88 50,92 46,96 14,96 10,92"],
  ["e", "8,50 12,54 12,86 8,90 4,86 4,54"],
  ["f", "8,10 12,14 12,46 8,50 4,46 4,14"],
  ["g", "14,46 46,46 50,50 46,54 14,54 10,50"],
];

function buildPanel(ledCount) {
  const leds = $("leds");
  leds.textContent = "";
  leds.style.gridTemplateColumns = `repeat(${ledCount}, 1fr)`;
  for (let i = 0; i < ledCount; i++) {
    leds.appendChild(el("div", { class: "led", "data-index": i, "data-rgb": "0,0,0", "data-brightness": "0" }));
  }
  const digits = $("digits");
  digits.textContent = "";
  for (let i = 0; i < 4; i++) {
    const svg = svgEl("svg", { class: "digit", viewBox: "0 0 64 100", "data-seg": "0" });
    for (const [name, points] of SEGMENTS) {
      svg.appendChild(svgEl("polygon", { class: "seg seg-" + name, points }));
    }
    svg.appendChild(svgEl("circle", { class: "seg seg-p", cx: 60, cy: 93, r: 3.5 }));
    digits.appendChild(svg);
  }
}

// An APA102 emits light in proportion to each channel x brightness/31 (PWM);
// the eye sees that light on a curve, a screen expects gamma-encoded values:
// encode with 1/2.2 so a dim marker pixel reads as dim but lit, as on the desk.
function ledCss(rgb, brightness) {
  const k = Math.max(0, Math.min(31, brightness)) / 31;
  return rgb.map((c) => Math.round(255 * Math.pow((c / 255) * k, 1 / 2.2)));
}

let lastFrame = null;

function renderFrame(f) {
  lastFrame = f;
  const leds = $("leds");
  if (leds.children.length !== f.leds.length) buildPanel(f.leds.length);
  f.leds.forEach((rgb, i) => {
    const led = leds.children[i];
    led.dataset.rgb = rgb.join(",");
    led.dataset.brightness = String(f.brightness);
    const [r, g, b] = ledCss(rgb, f.brightness);
    const lit = r + g + b > 0;
    led.style.background = lit ? `rgb(${r},${g},${b})` : "#000";
    led.style.boxShadow = lit ? `0 0 ${6 + (r + g + b) / 40}px rgb(${r},${g},${b})` : "none";
  });
  const digits = $("digits");
  digits.dataset.text = f.display_on ? f.text : "";
  digits.dataset.on = String(f.display_on);
  // TM1637 brightness 0..7: even 0 is clearly lit.
  digits.style.opacity = String(0.45 + 0.55 * (f.display_brightness / 7));
  [...digits.children].forEach((svg, i) => {
    const byte = f.display_on ? f.segments[i] : 0;
    svg.dataset.seg = String(byte);
    [...svg.children].forEach((seg, bit) => {
      seg.classList.toggle("on", (byte & (1 << bit)) !== 0);
    });
  });
}

// ---- status: counts, panel state, heartbeats ----------------------------

let routeOrder = [];
let statusKey = "";
let lastStatus = null;

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function when(iso) {
  if (!iso) return "never";
  const t = new Date(iso);
  return ago(Date.now() - t.getTime());
}

function renderStatus(s) {
  lastStatus = s;
  $("version").textContent = "banlight " + (s.version || "");
  // The configured order from the first paint: status carries it (history
  // too, later); object keys would be alphabetical.
  const order = routeOrder.length ? routeOrder : (s.route_order || []);
  const names = order.filter((n) => n in s.routes);
  for (const n of Object.keys(s.routes)) if (!names.includes(n)) names.push(n);
  const body = $("counts").tBodies[0];
  body.textContent = "";
  for (const name of names) {
    const r = s.routes[name];
    const tr = el("tr", { "data-route": name });
    const td = el("td");
    const sw = el("span", { class: "swatch" });
    sw.style.background = r.color;
    td.append(sw, document.createTextNode(name));
    tr.append(td, el("td", { class: "n count" }, r.count), el("td", { class: "n" }, r.last_24h),
      el("td", { class: "muted" }, when(r.last_seen)));
    body.appendChild(tr);
  }
  $("total").textContent = s.total;
  $("total24").textContent = s.last_24h;

  const badges = $("panel-state");
  badges.textContent = "";
  const p = s.panel || {};
  badges.appendChild(el("span", { class: "badge" }, "mode: " + s.mode));
  if (p.dark) badges.appendChild(el("span", { class: "badge warn", id: "dark" }, "panel dark (counting continues)"));
  if (p.quiet) badges.appendChild(el("span", { class: "badge warn" }, "quiet hours"));
  if (s.shutting_down) badges.appendChild(el("span", { class: "badge bad" }, "shutting down"));
  for (const k of ["board", "display", "leds", "buttons", "power"]) {
    if (p[k] && p[k] !== "ok" && p[k] !== "yes") badges.appendChild(el("span", { class: "badge bad" }, k + ": " + p[k]));
  }
  $("panel").dataset.dark = String(!!p.dark);

  renderHeartbeats(s.heartbeats);

  const counts = names.map((n) => s.routes[n].count + "/" + s.routes[n].last_seen);
  const key = JSON.stringify([s.total, s.store && s.store.events, counts]);
  if (key !== statusKey) {
    statusKey = key;
    refreshSoon();
  }
}

function renderHeartbeats(hb) {
  const box = $("heartbeats");
  box.textContent = "";
  const names = hb && typeof hb === "object" ? Object.keys(hb) : [];
  if (!names.length) {
    box.appendChild(el("p", { class: "muted" }, "no heartbeats configured"));
    return;
  }
  for (const name of names.sort()) {
    const h = hb[name] || {};
    const state = String(h.state || "new");
    const row = el("div", { class: "hb", "data-source": name, "data-state": state });
    const left = el("span", {}, name);
    let last = "never heard";
    if (typeof h.age_ms === "number") last = ago(h.age_ms);
    // last_ms: an absolute time (ms since 1970), or an age in ms.
    else if (typeof h.last_ms === "number") last = h.last_ms > 1e11 ? ago(Date.now() - h.last_ms) : ago(h.last_ms);
    else if (typeof h.last_seen === "string") last = when(h.last_seen);
    let extra = "";
    if (h.fail2ban !== undefined && h.fail2ban !== null) extra += " · fail2ban " + (h.fail2ban === true ? "up" : h.fail2ban === false ? "down" : h.fail2ban);
    left.appendChild(el("span", { class: "muted" }, " · " + last + extra));
    row.append(left, el("span", { class: "state state-" + state }, state));
    box.appendChild(row);
  }
}

// ---- chart and recent events --------------------------------------------

function renderChart(box, part, routes, tickEvery, tickLabel) {
  const n = part.counts.length ? part.counts[0].length : 0;
  const totals = new Array(n).fill(0);
  part.counts.forEach((row) => row.forEach((v, i) => { totals[i] += v; }));
  const max = Math.max(1, ...totals);
  const sum = totals.reduce((a, b) => a + b, 0);
  box.dataset.total = String(sum);
  box.dataset.max = String(Math.max(0, ...totals));
  box.textContent = "";
  const w = 10;
  const svg = svgEl("svg", { viewBox: `0 0 ${n * w} 100`, preserveAspectRatio: "none", role: "img" });
  svg.appendChild(svgEl("line", { class: "axis", x1: 0, y1: 100, x2: n * w, y2: 100 }));
  for (let i = 0; i < n; i++) {
    let y = 100;
    routes.forEach((r, ri) => {
      const v = part.counts[ri][i];
      if (!v) return;
      const h = (v / max) * 96;
      y -= h;
      const rect = svgEl("rect", {
        x: i * w + 1, y, width: w - 2, height: h, fill: r.color,
        "data-route": r.name, "data-bucket": i, "data-n": v,
      });
      const title = svgEl("title", {});
      title.textContent = `${r.name}: ${v}`;
      rect.appendChild(title);
      svg.appendChild(rect);
    });
  }
  box.appendChild(svg);
  const ticks = el("div", { class: "muted ticks" });
  // As many labels as fit side by side on one line (11 px text: about 6.5 px
  // a character, plus a gap): on a phone every 2nd or 3rd of the desktop's,
  // so none run together.
  const longest = Math.max(6, ...Array.from({ length: n }, (_, i) => String(tickLabel(i) || "").length));
  const fit = Math.max(2, Math.floor((box.clientWidth || 600) / (longest * 6.5 + 10)));
  let every = tickEvery;
  while (Math.ceil(n / every) + 1 > fit) every += tickEvery;
  for (let i = 0; i < n; i += every) ticks.appendChild(el("span", {}, tickLabel(i)));
  ticks.appendChild(el("span", {}, "max " + Math.max(0, ...totals)));
  box.appendChild(ticks);
}

function renderHistory(h) {
  const order = h.routes.map((r) => r.name);
  const reorder = order.join() !== routeOrder.join();
  routeOrder = order;
  if (reorder && lastStatus) renderStatus(lastStatus);
  renderChart($("chart-day"), h.day, h.routes, 24, (i) => {
    const d = new Date(h.day.edges[i]);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  });
  renderChart($("chart-month"), h.month, h.routes, 6, (i) => h.month.labels[i]);
  const legend = $("legend");
  legend.textContent = "";
  for (const r of h.routes) {
    const s = el("span");
    const sw = el("span", { class: "swatch" });
    sw.style.background = r.color;
    s.append(sw, document.createTextNode(r.name));
    legend.appendChild(s);
  }
}

function renderRecent(list) {
  const body = $("events").tBodies[0];
  body.textContent = "";
  if (!list.length) {
    const tr = el("tr");
    tr.appendChild(el("td", { class: "muted", colspan: 5 }, "no events yet"));
    body.appendChild(tr);
    return;
  }
  const today = new Date().toDateString();
  for (const e of list) {
    const d = new Date(e.ts_ms);
    const t = d.toDateString() === today ? d.toLocaleTimeString() : d.toLocaleString();
    // A heartbeat's state is stored as its route: show what happened.
    const route = e.kind === "hook" || e.kind === "hook-before-reset" ? e.route
      : e.kind === "heartbeat" ? `heartbeat ${e.route}` : `${e.route} (${e.kind})`;
    const tr = el("tr", { "data-kind": e.kind });
    tr.append(el("td", {}, t), el("td", {}, route), el("td", {}, e.source || "–"),
      el("td", {}, e.jail || "–"), el("td", {}, e.ip || "–"));
    body.appendChild(tr);
  }
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

let refreshing = false;
let refreshAgain = false;
let lastRefresh = 0;

// Chart and events follow the counts, at most every 2 s during a flood.
async function refresh() {
  if (refreshing) { refreshAgain = true; return; }
  refreshing = true;
  try {
    const wait = lastRefresh + 2000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    lastRefresh = Date.now();
    const [h, e] = await Promise.all([getJson("/api/history"), getJson("/api/recent")]);
    renderHistory(h);
    renderRecent(e.events);
    document.body.dataset.refreshed = String(lastRefresh);
  } catch (err) {
    console.warn(err);
  } finally {
    refreshing = false;
    if (refreshAgain) { refreshAgain = false; refresh(); }
  }
}

function refreshSoon() { refresh(); }

// ---- the stream ---------------------------------------------------------

function connect() {
  const conn = $("conn");
  const es = new EventSource("/api/stream");
  es.addEventListener("open", () => { conn.dataset.state = "live"; conn.textContent = "live"; });
  es.addEventListener("error", () => {
    // The stream ends every ~50 s by design; the browser reconnects itself.
    conn.dataset.state = es.readyState === EventSource.CLOSED ? "lost" : "connecting";
    conn.textContent = es.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting";
    if (es.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
  });
  es.addEventListener("frame", (m) => renderFrame(JSON.parse(m.data)));
  es.addEventListener("status", (m) => renderStatus(JSON.parse(m.data)));
}

buildPanel(8);
refresh();
connect();
// "last seen ... ago" moves on without new data.
setInterval(() => { if (lastStatus && !document.hidden) renderStatus(lastStatus); }, 30 * 1000);
// The 24-hour chart slides on even when nothing happens.
setInterval(() => { if (!document.hidden) refresh(); }, 5 * 60 * 1000);

// The IOC wall: tiles per area, a 24-hour chart, commune comparison, targets, alerts; live from the
// stream (v1/stream tells which sources changed; the figures are then read again from v1/indicators).
"use strict";

const TEXT = {
  vi: { title: "Trung tâm điều hành thông minh tỉnh Lạng Sơn", offline: "Mất kết nối", online: "Trực tiếp",
        connecting: "Đang kết nối…", reconnecting: "Đang kết nối lại…", staleBadge: "Số liệu cũ",
        series: "Diễn biến 24 giờ", communes: "So sánh xã, phường", targets: "Chỉ tiêu Nghị quyết 49",
        alerts: "Cảnh báo đang hiệu lực", noSource: "Chưa kết nối nguồn dữ liệu", noAlerts: "Không có cảnh báo",
        noData: "Chưa có số liệu", asOf: "Cập nhật", target: "Mục tiêu", current: "Hiện tại",
        unverified: "chưa kiểm chứng", noTarget: "chưa có số mục tiêu", switchTo: "EN", switchLabel: "Chuyển sang tiếng Anh",
        notConnected: "chưa kết nối", notMeasured: "Không đo được ở đây", top: "Cao nhất",
        seriesPick: "Chỉ số trên biểu đồ 24 giờ", communePick: "Chỉ số so sánh giữa các xã, phường",
        stale: "Không tải được số liệu", lastGood: "số liệu lúc", none: "chưa có số liệu nào" },
  en: { title: "Lạng Sơn intelligent operations centre", offline: "Offline", online: "Live",
        connecting: "Connecting…", reconnecting: "Reconnecting…", staleBadge: "Stale data",
        series: "Last 24 hours", communes: "Communes compared", targets: "Resolution 49 targets",
        alerts: "Active alerts", noSource: "No source connected", noAlerts: "No alerts",
        noData: "No data yet", asOf: "Updated", target: "Target", current: "Current",
        unverified: "unverified", noTarget: "no target number", switchTo: "VI", switchLabel: "Switch to Vietnamese",
        notConnected: "not connected", notMeasured: "Not measured here", top: "Top",
        seriesPick: "Indicator on the 24-hour chart", communePick: "Indicator compared across communes",
        stale: "Data unavailable", lastGood: "figures as of", none: "no figures yet" },
};
const ZONE = "Asia/Ho_Chi_Minh";   // the province's clock, whatever zone the screen's browser is set to
const TOP_COMMUNES = 15;
let lang = (localStorage.getItem("ioc-lang") === "en") ? "en" : "vi";
let data = null, targets = null, lastValues = {}, lastGood = null, dataOk = true, stream = "connecting";
const $ = (id) => document.getElementById(id);
const t = (k) => TEXT[lang][k];
const locale = () => (lang === "vi" ? "vi-VN" : "en-GB");
const nf = () => new Intl.NumberFormat(locale(), { maximumFractionDigits: 2 });
const clock = (d, l) => new Intl.DateTimeFormat(l || locale(), { timeZone: ZONE, hour: "2-digit", minute: "2-digit",
                                                                  second: "2-digit", hourCycle: "h23" }).format(d);
const wide = () => getComputedStyle(document.documentElement).getPropertyValue("--wide").trim() === "1";

// plotly draws a Date in the browser's zone: the chart gets the province's wall-clock time as text
const PARTS = new Intl.DateTimeFormat("en-GB", { timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit",
                                                 hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
function zoned(iso) {
  const p = Object.fromEntries(PARTS.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

function fmt(item) {
  if (item.status !== "ok") return t("notConnected");
  if (item.value === null || item.value === undefined) return "—";
  const unit = { percent: "%", VND: " ₫" }[item.unit] || "";
  return nf().format(item.value) + unit;
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of kids) if (c) e.append(c);
  return e;
}

function renderTiles() {
  const box = $("areas");
  box.replaceChildren();
  for (const area of data.areas) {
    const items = data.items.filter((i) => i.area === area.id);
    const tile = el("article", { class: "tile " + (area.status === "ok" ? "ok" : "no-source"), "data-area": area.id },
      el("h3", { text: area.name[lang] }));
    if (area.status !== "ok" || !items.length) {
      tile.append(el("p", { class: "none", "data-status": "no-source", text: area.status !== "ok" ? t("noSource") : t("noData") }));
    }
    if (area.status === "ok") {
      for (const item of items) {
        const v = el("span", { class: "value" + (item.status === "ok" ? "" : " off"), "data-indicator": item.id, text: fmt(item) });
        if (item.id in lastValues && lastValues[item.id] !== item.value) v.classList.add("changed");
        tile.append(el("div", { class: "row" }, el("span", { class: "name", text: item.name[lang] }), v));
      }
    }
    box.append(tile);
  }
  lastValues = Object.fromEntries(data.items.map((i) => [i.id, i.value]));
  $("asof").textContent = t("asOf") + " " + clock(new Date(data.as_of));
}

function fillPick(select, filter) {
  const keep = select.value;
  const options = data.items.filter(filter);
  select.replaceChildren(...options.map((i) => el("option", { value: i.id, text: i.name[lang] })));
  if (options.some((i) => i.id === keep)) select.value = keep;
}

const PLOT = { displayModeBar: false, responsive: true };
function layout() {
  // ticks grow with the page's type: read from across the operations centre on the wall
  const size = Math.round(parseFloat(getComputedStyle(document.documentElement).fontSize) * 0.75);
  return { paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: "#e0e1dd", size },
           separators: lang === "vi" ? ",." : ".,", margin: { l: 40, r: 10, t: 10, b: 40 },
           xaxis: { gridcolor: "#2b3a55" }, yaxis: { gridcolor: "#2b3a55", rangemode: "tozero", automargin: true } };
}

async function renderSeries() {
  const id = $("series-pick").value;
  if (!id) {  // nothing connected yet: an empty chart that says so
    await Plotly.react("chart", [], { ...layout(), annotations: [{ text: t("noSource"), showarrow: false, font: { size: 16 } }],
                                      xaxis: { visible: false }, yaxis: { visible: false } }, PLOT);
    return;
  }
  const body = await get(`v1/indicators/${encodeURIComponent(id)}/series?step=hour`);
  const x = body.points.map((p) => zoned(p.from));
  const y = body.points.map((p) => p.value);
  const base = layout();
  // the province's way of writing dates (no Vietnamese locale ships with plotly's package)
  const xaxis = { ...base.xaxis, type: "date", automargin: true, tickformat: lang === "vi" ? "%H:%M<br>%d/%m" : "%H:%M<br>%d %b",
                  hoverformat: lang === "vi" ? "%H:%M %d/%m/%Y" : "%H:%M %d %b %Y" };
  await Plotly.react("chart", [{ x, y, type: "scatter", mode: "lines+markers", line: { color: "#4cc38a", shape: "hv" } }],
                     { ...base, xaxis }, PLOT);
}

async function renderCommunes() {
  const id = $("commune-pick").value;
  const item = data.items.find((i) => i.id === id);
  const by = (item && item.by && item.by.commune) || {};
  // bars stay keyed by code (two communes may share a name); the axis shows the directory's names
  const names = (data && data.commune_names) || {};
  const label = (c) => names[c] || c;
  const rows = Object.entries(by).filter(([, v]) => v !== null && v !== undefined)
    .sort((a, b) => b[1] - a[1] || label(a[0]).localeCompare(label(b[0]), "vi"));
  const box = $("communes");
  const base = layout();
  // the highest first, as many as the panel shows legibly (a province has 65 communes); a bar is as
  // thick with one commune as with fifteen
  const bar = Math.max(24, base.font.size * 1.8), frame = 45;
  let n = TOP_COMMUNES;
  if (wide()) {
    box.style.height = "";
    n = Math.max(5, Math.min(TOP_COMMUNES, Math.floor((box.clientHeight - frame) / bar)));
  }
  const top = rows.slice(0, n);
  const height = frame + bar * Math.max(top.length, 3);
  if (!wide()) box.style.height = height + "px";
  $("communes-note").textContent = rows.length > top.length ? `${t("top")} ${top.length}/${rows.length}` : "";
  const codes = top.map(([c]) => c);
  const counts = top.every(([, v]) => Number.isInteger(v)) && top.length && top[0][1] < 6;   // no 0,2 of a dossier
  await Plotly.react("communes", [{ y: codes, x: top.map(([, v]) => v), type: "bar", orientation: "h", marker: { color: "#778da9" },
                                    text: top.map(([, v]) => nf().format(v)), textposition: "outside", cliponaxis: false,
                                    hovertext: codes.map((c) => `${label(c)} (${c})`), hoverinfo: "text+x" }],
                     { ...base, width: box.clientWidth || undefined, height: Math.min(height, box.clientHeight) || height, margin: { l: 10, r: 40, t: 5, b: 30 }, bargap: 0.25,
                       annotations: top.length ? [] : [{ text: t("noData"), showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }],
                       xaxis: { ...base.xaxis, rangemode: "tozero", automargin: true, dtick: counts ? 1 : undefined },
                       yaxis: { type: "category", autorange: "reversed", tickvals: codes, ticktext: codes.map(label),
                                automargin: true, gridcolor: "rgba(0,0,0,0)" } }, { ...PLOT, responsive: false });
}

function renderTargets() {
  const list = $("targets");
  list.replaceChildren();
  for (const tg of targets.items) {
    const cur = tg.status !== "ok" ? t("noSource") : (tg.current === null ? "—" : nf().format(tg.current) + "%");
    const goal = tg.target === null ? t("noTarget") : nf().format(tg.target) + "% (" + tg.by + ")";
    const li = el("li", { "data-target": tg.id }, el("div", { text: tg.name[lang] }),
      el("div", { class: "muted", text: `${t("current")}: ${cur} · ${t("target")}: ${goal}` + (tg.verified ? "" : ` · ${t("unverified")}`) }));
    if (tg.progress_percent !== null) {
      li.append(el("div", { class: "progress" }, el("span", { style: `width:${Math.min(100, tg.progress_percent)}%` })));
    }
    list.append(li);
  }
  list.append(el("li", { class: "muted", text: t("notMeasured") + ": " + targets.not_measured.map((n) => n.name[lang]).join("; ") }));
}

function renderAlerts() {
  const list = $("alerts");
  list.replaceChildren();
  const rows = [];
  for (const id of ["environment.alerts-active", "softatm.float-alerts"]) {
    const item = data.items.find((i) => i.id === id);
    if (!item || item.status !== "ok" || !item.by) continue;
    const dim = item.by.station ? "station" : "point";
    for (const [where, n] of Object.entries(item.by[dim] || {})) if (n) rows.push(`${item.name[lang]} — ${where}: ${nf().format(n)}`);
  }
  if (!rows.length) rows.push(t("noAlerts"));
  for (const r of rows) list.append(el("li", { text: r }));
}

const FETCH_TIMEOUT_MS = 20000;   // a request that never answers must not hold every later refresh
async function get(path) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
  try {
    const r = await fetch(path, { headers: { Accept: "application/json" }, signal: abort.signal });
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return await r.json();
  } finally {
    clearTimeout(timer);
  }
}

// one badge for two things: is the stream up, and are the figures on screen the latest read
function badge() {
  const [cls, key] = !dataOk ? ["stale", "staleBadge"]
    : { live: ["on", "online"], connecting: ["wait", "connecting"], reconnecting: ["wait", "reconnecting"],
        offline: ["off", "offline"] }[stream];
  const b = $("live");
  b.className = "live " + cls;
  b.dataset.state = dataOk ? stream : "stale";
  b.textContent = t(key);
}

function showStale(failed) {
  dataOk = !failed;
  const banner = $("stale");
  // in both languages: whoever looks at the wall reads it whichever language it is switched to
  const when = lastGood ? `${TEXT.vi.lastGood} ${clock(lastGood, "vi-VN")} / ${TEXT.en.lastGood} ${clock(lastGood, "en-GB")}`
                        : `${TEXT.vi.none} / ${TEXT.en.none}`;
  banner.textContent = `${TEXT.vi.stale} / ${TEXT.en.stale} — ${when}`;
  banner.hidden = !failed;
  badge();
}

let refreshing = null, again = false;
async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    try {
      [data, targets] = await Promise.all([get("v1/indicators"), get("v1/targets")]);
      lastGood = new Date(data.as_of);
      renderTiles();
      fillPick($("series-pick"), (i) => i.status === "ok");
      fillPick($("commune-pick"), (i) => i.status === "ok" && i.dimensions.includes("commune"));
      renderTargets();
      renderAlerts();
      if (window.Plotly) await Promise.all([renderSeries(), renderCommunes()]);
      showStale(false);
      document.body.dataset.ready = "1";
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    } catch (e) {
      // the figures on screen stay, marked as old; the next event or the minute's poll tries again
      console.warn("IOC wall: figures not refreshed:", e && e.message);
      showStale(true);
    } finally {
      refreshing = null;
      if (again) { again = false; refresh(); }
    }
  })();
  return refreshing;
}

function applyLang() {
  document.documentElement.lang = lang;
  document.title = t("title");
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-label]")) e.setAttribute("aria-label", t(e.dataset.i18nLabel));
  $("lang").textContent = t("switchTo");
  $("lang").setAttribute("aria-label", t("switchLabel"));
  badge();
}

// The browser reconnects an EventSource by itself after a dropped connection, but never after an
// answer other than 200 (a 503 while the function restarts, a 429 when the slots are taken): then
// a new one is opened here, 2 s after the first failure, doubling up to 30 s.
const RETRY_FIRST_MS = 2000, RETRY_MAX_MS = 30000, OFFLINE_AFTER = 4;
let retryMs = RETRY_FIRST_MS, failures = 0, bye = false, missed = false, seq = null;
function listen() {
  const es = new EventSource("v1/stream");
  es.onopen = () => { retryMs = RETRY_FIRST_MS; failures = 0; };
  es.addEventListener("hello", (e) => {
    const now = JSON.parse(e.data || "{}").seq;
    // back after a failure (a restarted function counts from its own seq): what passed meanwhile is read
    if (missed || (seq !== null && now !== seq)) refresh();
    seq = now;
    stream = "live"; bye = false; missed = false; badge();
  });
  es.addEventListener("changed", (e) => { seq = JSON.parse(e.data || "{}").seq ?? seq; refresh(); });
  es.addEventListener("bye", () => { bye = true; });   // the server closes after a while; a reconnect follows
  es.onerror = () => {
    missed = missed || !bye;
    if (es.readyState === EventSource.CLOSED) {
      es.close();
      failures += 1;
      stream = failures >= OFFLINE_AFTER ? "offline" : "reconnecting";
      badge();
      setTimeout(listen, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      return;
    }
    if (!bye) { stream = "reconnecting"; badge(); }
    bye = false;
  };
}

// a chart follows its panel, not only the window: the banner coming or going changes the panels' height
const resized = new Map();
const watch = new ResizeObserver((entries) => {
  for (const { target } of entries) {
    clearTimeout(resized.get(target.id));
    resized.set(target.id, setTimeout(() => {
      if (!data || !window.Plotly || !target.querySelector(".main-svg")) return;
      // the communes chart is sized here (as many bars as its panel holds, each as thick as the last)
      (target.id === "communes" ? renderCommunes() : Plotly.Plots.resize(target)).catch(() => showStale(true));
    }, 150));
  }
});

document.addEventListener("DOMContentLoaded", () => {
  $("lang").addEventListener("click", () => {
    lang = lang === "vi" ? "en" : "vi";
    localStorage.setItem("ioc-lang", lang);
    applyLang();
    refresh();   // every text on the wall is drawn from the figures (and it is a try again after a failure)
  });
  $("series-pick").addEventListener("change", () => renderSeries().catch(() => showStale(true)));
  $("commune-pick").addEventListener("change", () => renderCommunes().catch(() => showStale(true)));
  watch.observe($("chart"));
  watch.observe($("communes"));
  applyLang();
  refresh();
  listen();
  setInterval(refresh, 60000);  // gauges move with the clock (a deadline passes) even when no event comes
});

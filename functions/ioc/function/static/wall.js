// The IOC wall: tiles per area, a 24-hour chart, commune comparison, targets, alerts; live from the
// stream (v1/stream tells which sources changed; the figures are then read again from v1/indicators).
"use strict";

const TEXT = {
  vi: { title: "Trung tâm điều hành thông minh tỉnh Lạng Sơn", offline: "Mất kết nối", online: "Trực tiếp",
        series: "Diễn biến 24 giờ", communes: "So sánh xã, phường", targets: "Chỉ tiêu Nghị quyết 49",
        alerts: "Cảnh báo đang hiệu lực", noSource: "Chưa kết nối nguồn dữ liệu", noAlerts: "Không có cảnh báo",
        noData: "Chưa có số liệu", asOf: "Cập nhật", target: "Mục tiêu", current: "Hiện tại",
        unverified: "chưa kiểm chứng", noTarget: "chưa có số mục tiêu", switchTo: "EN", notConnected: "chưa kết nối", notMeasured: "Không đo được ở đây" },
  en: { title: "Lạng Sơn intelligent operations centre", offline: "Offline", online: "Live",
        series: "Last 24 hours", communes: "Communes compared", targets: "Resolution 49 targets",
        alerts: "Active alerts", noSource: "No source connected", noAlerts: "No alerts",
        noData: "No data yet", asOf: "Updated", target: "Target", current: "Current",
        unverified: "unverified", noTarget: "no target number", switchTo: "VI", notConnected: "not connected", notMeasured: "Not measured here" },
};
let lang = (localStorage.getItem("ioc-lang") === "en") ? "en" : "vi";
let data = null, targets = null, lastValues = {};
const $ = (id) => document.getElementById(id);
const t = (k) => TEXT[lang][k];
const nf = () => new Intl.NumberFormat(lang === "vi" ? "vi-VN" : "en-GB", { maximumFractionDigits: 2 });

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
  $("asof").textContent = t("asOf") + " " + new Date(data.as_of).toLocaleTimeString(lang === "vi" ? "vi-VN" : "en-GB");
}

function fillPick(select, filter) {
  const keep = select.value;
  const options = data.items.filter(filter);
  select.replaceChildren(...options.map((i) => el("option", { value: i.id, text: i.name[lang] })));
  if (options.some((i) => i.id === keep)) select.value = keep;
}

const PLOT = { displayModeBar: false, responsive: true };
function layout() {
  return { paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: "#e0e1dd" },
           margin: { l: 40, r: 10, t: 10, b: 40 }, xaxis: { gridcolor: "#2b3a55" }, yaxis: { gridcolor: "#2b3a55", rangemode: "tozero" } };
}

async function renderSeries() {
  const id = $("series-pick").value;
  if (!id) {  // nothing connected yet: an empty chart that says so
    await Plotly.react("chart", [], { ...layout(), annotations: [{ text: t("noSource"), showarrow: false, font: { size: 16 } }],
                                      xaxis: { visible: false }, yaxis: { visible: false } }, PLOT);
    return;
  }
  const body = await get(`v1/indicators/${encodeURIComponent(id)}/series?step=hour`);
  const x = body.points.map((p) => new Date(p.from));
  const y = body.points.map((p) => p.value);
  await Plotly.react("chart", [{ x, y, type: "scatter", mode: "lines+markers", line: { color: "#4cc38a", shape: "hv" } }], layout(), PLOT);
}

async function renderCommunes() {
  const id = $("commune-pick").value;
  const item = data.items.find((i) => i.id === id);
  const by = (item && item.by && item.by.commune) || {};
  const codes = Object.keys(by);
  // bars stay keyed by code (two communes may share a name); the axis shows the directory's names
  const names = (data && data.commune_names) || {};
  const label = (c) => names[c] || c;
  await Plotly.react("communes", [{ x: codes, y: codes.map((c) => by[c]), type: "bar", marker: { color: "#778da9" },
                                    hovertext: codes.map((c) => `${label(c)} (${c})`), hoverinfo: "text+y" }],
                     { ...layout(), xaxis: { type: "category", gridcolor: "#2b3a55", tickvals: codes,
                                             ticktext: codes.map(label), automargin: true } }, PLOT);
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

async function get(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

let refreshing = null, again = false;
async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    try {
      [data, targets] = await Promise.all([get("v1/indicators"), get("v1/targets")]);
      renderTiles();
      fillPick($("series-pick"), (i) => i.status === "ok");
      fillPick($("commune-pick"), (i) => i.status === "ok" && i.dimensions.includes("commune"));
      renderTargets();
      renderAlerts();
      if (window.Plotly) await Promise.all([renderSeries(), renderCommunes()]);
      document.body.dataset.ready = "1";
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
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
  for (const e of document.querySelectorAll("[data-i18n]")) {
    if (e.id !== "live") e.textContent = t(e.dataset.i18n);
  }
  $("lang").textContent = t("switchTo");
  $("live").textContent = $("live").classList.contains("on") ? t("online") : t("offline");
  if (data) refresh();
}

function listen() {
  const source = new EventSource("v1/stream");
  source.addEventListener("hello", () => { $("live").className = "live on"; $("live").textContent = t("online"); });
  source.addEventListener("changed", () => refresh());
  source.addEventListener("bye", () => { /* the server closes after a while; EventSource reconnects */ });
  source.addEventListener("busy", () => { $("live").className = "live off"; $("live").textContent = t("offline"); });
  source.onerror = () => { $("live").className = "live off"; $("live").textContent = t("offline"); };
}

document.addEventListener("DOMContentLoaded", () => {
  $("lang").addEventListener("click", () => { lang = lang === "vi" ? "en" : "vi"; localStorage.setItem("ioc-lang", lang); applyLang(); });
  $("series-pick").addEventListener("change", renderSeries);
  $("commune-pick").addEventListener("change", renderCommunes);
  applyLang();
  refresh();
  listen();
  setInterval(refresh, 60000);  // gauges move with the clock (a deadline passes) even when no event comes
});

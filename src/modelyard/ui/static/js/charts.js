// Line charts on uPlot (installed from npm, see ui/web/). Each chart is sized to its container.

import { h } from "./dom.js";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777"];

// xs: numbers (seconds since epoch when time=true); series: [{label, values}] aligned with xs;
// a series with `dots: true` is drawn as points only (one trial is not a line), one with
// `dots: false` as a line without points.
export function lineChart({ title, xs, series, time = false, height = 220, bars = false,
                            yLabel = "", xLabel = time ? "time" : "step", zeroBased = false }) {
  const box = h("div", { class: "chart", testid: "chart" }, h("h3", {}, title));
  if (!xs.length || !series.length) {
    box.append(h("p", { class: "muted" }, "No data points yet."));
    return box;
  }
  if (!window.uPlot) {
    box.append(h("p", { class: "muted" }, "Charts unavailable (uPlot not built)."));
    return box;
  }
  const opts = {
    width: 560, height,
    scales: { x: { time }, ...(zeroBased ? { y: { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } } : {}) },
    // steps and trial numbers are whole: no 0.5 ticks
    axes: [time ? {} : { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 1e5] },
           { label: yLabel, size: 60 }],
    series: [{ label: xLabel }, ...series.map((s, i) => ({
      label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
      points: { show: s.dots ?? (xs.length < 60 || s.values.filter((v) => v !== null).length < 10),
                ...(s.dots ? { size: 9, fill: COLORS[i % COLORS.length] } : {}) },
      ...(s.dots ? { paths: () => null } : {}),
      ...(bars ? { paths: window.uPlot.paths.bars({ size: [0.6, 40] }),
                   fill: COLORS[i % COLORS.length] + "55" } : {}),
    }))],
  };
  const plotHost = h("div", {});
  box.append(plotHost);
  const plot = new window.uPlot(opts, [xs, ...series.map((s) => s.values)], plotHost);
  // Fit the container once it is laid out.
  requestAnimationFrame(() => {
    const w = Math.max(320, Math.min(box.clientWidth - 16, 1100));
    if (w) plot.setSize({ width: w, height });
  });
  return box;
}

// Query results (metrics store) -> one chart; one line per series group.
export function seriesChart(title, result, { yLabel = "", scale = 1 } = {}) {
  const times = new Set();
  for (const s of result.series) for (const p of s.points) times.add(toSec(p.time));
  const xs = [...times].sort((a, b) => a - b);
  const series = result.series.map((s) => {
    const byTime = new Map(s.points.map((p) => [toSec(p.time), p.value]));
    const label = Object.entries(s.group).map(([k, v]) => (k === "q" ? v : `${k} ${v}`)).join(" ") || result.metric;
    return { label, values: xs.map((x) => (byTime.get(x) ?? null) === null ? null : byTime.get(x) * scale) };
  });
  const any = series.some((s) => s.values.some((v) => v !== null));
  return lineChart({ title, xs: any ? xs : [], series, time: true, yLabel, zeroBased: true });
}

export function toSec(iso) {
  const s = iso.endsWith("Z") || iso.includes("+") ? iso : iso + "Z";
  return Date.parse(s) / 1000;
}

// A horizontal bar per entry: {label: value}; for label counts and traffic splits.
export function bars(counts, { unit = "", testid = "bars" } = {}) {
  const entries = Object.entries(counts);
  const max = Math.max(1, ...entries.map(([, v]) => Math.abs(v)));
  return h("div", { class: "bars", testid },
    entries.map(([k, v]) => h("div", { class: "bar-row" },
      h("span", { class: "bar-label" }, k),
      h("span", { class: "bar-track" },
        h("span", { class: v < 0 ? "bar neg" : "bar", style: `width:${(Math.abs(v) / max) * 100}%` })),
      h("span", { class: "bar-value" }, `${v}${unit}`))));
}

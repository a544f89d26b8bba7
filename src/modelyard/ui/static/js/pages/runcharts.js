// Metric curves of one registry run: one chart per metric key, x = step.

import { lineChart } from "../charts.js";
import { enc } from "../api.js";
import { h } from "../dom.js";

export async function runCharts(ctx, runId) {
  const run = await ctx.api(`/runs/${enc(runId)}`);
  const keys = Object.keys(run.metrics || {}).sort().slice(0, 12);
  const series = await Promise.all(keys.map((key) =>
    ctx.api(`/runs/${enc(runId)}/metrics`, { query: { key } })));
  const charts = keys.map((key, i) => {
    const pts = series[i];
    return lineChart({ title: key, xs: pts.map((p) => p.step),
                       series: [{ label: key, values: pts.map((p) => p.value) }] });
  });
  return { run, node: h("div", { class: "charts" }, charts.length ? charts
    : h("p", { class: "muted" }, "This run has logged no metrics yet.")) };
}

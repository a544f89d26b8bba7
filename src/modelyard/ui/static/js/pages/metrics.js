// Metrics dashboards: traffic, latency and errors of every deployment; alert rules if present.

import { ifRouted } from "../api.js";
import { seriesChart } from "../charts.js";
import { badge, guarded, h, num, section, table, when } from "../dom.js";

export async function render(el, ctx) {
  el.append(h("h1", {}, "Metrics"));
  const range = h("select", { name: "window" }, [["60", "last hour"], ["15", "last 15 min"], ["360", "last 6 h"],
    ["1440", "last day"], ["10080", "last week"]].map(([v, t]) => h("option", { value: v }, t)));
  const charts = h("div", { class: "charts" });
  el.append(section("All deployments", h("label", {}, "window ", range), charts));
  const draw = async () => {
    const minutes = Number(range.value);
    const end = new Date(Date.now() + 1000);
    const start = new Date(end - minutes * 60000);
    const step = Math.max(10, Math.round((minutes * 60) / 60));
    const q = (metric) => ctx.api("/metrics/query", { query: {
      metric, start: start.toISOString(), end: end.toISOString(), step_s: step, group_by: "deployment" } });
    const [count, p95, errors, accuracy] = await Promise.all([
      q("count"), q("latency_p95"), q("error_rate"), q("accuracy")]);
    charts.replaceChildren(seriesChart(`requests per ${step} s`, count), seriesChart("latency p95 (ms)", p95),
      seriesChart("error rate", errors), seriesChart("accuracy (from feedback)", accuracy));
  };
  range.onchange = draw;
  await draw();
  ctx.every(10000, draw);

  const rules = await ifRouted(ctx.api("/metrics/alerts"));
  if (rules === null) {
    el.append(section("Alerts", h("p", { class: "muted" }, "This server has no alert-rule routes yet.")));
    return;
  }
  const card = section("Alerts");
  el.append(card);
  const host = h("div", { testid: "alerts" });
  const drawAlerts = (rules) => host.replaceChildren(table(
    ["rule", "state", "condition", "deployment", "last value", "evaluated"],
    rules.map((r) => [r.spec.name, badge(r.state),
      `${r.spec.metric} ${r.spec.op} ${r.spec.threshold} over ${r.spec.window_s} s`,
      r.spec.deployment || "all", num(r.value), when(r.evaluated_at)]),
    "No alert rules: create one with the SDK or POST /metrics/alerts."));
  if (ctx.canWrite) {
    const form = h("form", { class: "inline" }, h("button", { type: "submit", class: "secondary", testid: "evaluate-alerts" }, "Evaluate now"));
    card.append(guarded(form, async () => {
      drawAlerts(await ctx.api("/metrics/alerts/evaluate", { method: "POST" }));
      return "evaluated";
    }));
  }
  card.append(host);
  drawAlerts(rules);
}

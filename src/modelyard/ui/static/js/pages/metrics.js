// Metrics dashboards: traffic, latency and errors of every deployment; alert rules if present.

import { routes } from "../api.js";
import { seriesChart } from "../charts.js";
import { h, json, section, table } from "../dom.js";

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

  const paths = await routes();
  const alertPath = paths.find((p) => /^\/api\/v1\/projects\/\{project\}\/(metrics\/)?alerts$/.test(p));
  if (!alertPath) {
    el.append(section("Alerts", h("p", { class: "muted" }, "This server has no alert-rule routes yet.")));
    return;
  }
  const page = await ctx.api(alertPath.replace("/api/v1/projects/{project}", ""));
  const rules = Array.isArray(page) ? page : page.items || [];
  el.append(section("Alerts", table(["rule", "state", "condition"],
    rules.map((r) => [r.name || r.id, r.state || (r.firing ? "firing" : "ok"), json(r.condition || r)]),
    "No alert rules.")));
}

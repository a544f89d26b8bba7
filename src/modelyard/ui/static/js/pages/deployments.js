// Deployments: traffic split (and the canary form), live latency and traffic charts, events.

import { enc } from "../api.js";
import { bars, seriesChart } from "../charts.js";
import { guarded, h, json, kv, link, section, table, when } from "../dom.js";

export async function render(el, ctx, [name]) {
  return name ? detail(el, ctx, name) : list(el, ctx);
}

async function list(el, ctx) {
  const deps = await ctx.api("/deployments");
  el.append(h("h1", {}, "Deployments"), section(`Deployments (${deps.length})`, table(
    ["deployment", "model", "traffic", "shadow", "updated"],
    deps.map((d) => [link(ctx.href("deployments", d.name), d.name), d.model_ref,
      d.traffic ? Object.entries(d.traffic).map(([v, p]) => `v${v} ${p}%`).join(" · ") : `all → ${d.model_ref}`,
      d.shadow_version ? `v${d.shadow_version}` : "–", when(d.updated_at)]),
    "No deployments yet.")));
}

async function detail(el, ctx, name) {
  const base = `/deployments/${enc(name)}`;
  const [dep, events] = await Promise.all([ctx.api(base), ctx.api(`${base}/events`, { query: { limit: 20 } })]);
  el.append(h("h1", {}, link(ctx.href("deployments"), "Deployments"), " / ", dep.name));
  el.append(section("Deployment", kv({ model: link(ctx.href("models", dep.model), dep.model_ref),
    shadow: dep.shadow_version ? `v${dep.shadow_version}` : null, batching: json(dep.batching),
    rollback: dep.rollback ? json(dep.rollback) : null, updated: when(dep.updated_at) })));

  const split = dep.traffic ? Object.fromEntries(Object.entries(dep.traffic).map(([v, p]) => [`v${v}`, p]))
    : { [dep.model_ref]: 100 };
  const traffic = section("Traffic split", bars(split, { unit: "%", testid: "traffic" }));
  if (ctx.canWrite) traffic.append(canaryForm(ctx, base, dep));
  el.append(traffic);

  const range = h("select", { name: "window" }, [["15", "last 15 min"], ["60", "last hour"], ["360", "last 6 h"],
    ["1440", "last day"]].map(([v, t]) => h("option", { value: v }, t)));
  const charts = h("div", { class: "charts" });
  el.append(section("Live latency and traffic", h("label", {}, "window ", range), charts));
  const draw = async () => {
    const minutes = Number(range.value);
    const end = new Date(Date.now() + 1000);
    const start = new Date(end - minutes * 60000);
    const step = Math.max(10, Math.round((minutes * 60) / 60));
    const q = (metric, group_by) => ctx.api("/metrics/query", { query: {
      metric, start: start.toISOString(), end: end.toISOString(), step_s: step, deployment: name, group_by } });
    const [p50, p95, p99, count, errors] = await Promise.all([
      q("latency_p50"), q("latency_p95"), q("latency_p99"), q("count", "version"), q("error_rate")]);
    const latency = { ...p50, series: [
      ...label(p50, "p50"), ...label(p95, "p95"), ...label(p99, "p99")] };
    charts.replaceChildren(
      seriesChart("latency (ms)", latency, { yLabel: "ms" }),
      seriesChart(`requests per ${step} s, by version`, count),
      seriesChart("error rate", errors));
  };
  range.onchange = draw;
  await draw();
  ctx.every(5000, draw);

  el.append(section("Events", table(["when", "kind", "message"],
    events.map((e) => [when(e.time), e.kind, e.message]))));
}

function label(result, name) {
  return result.series.map((s) => ({ ...s, group: { q: name } }));
}

function canaryForm(ctx, base, dep) {
  const rows = h("div", { class: "split-rows" });
  const current = dep.traffic || {};
  const addRow = (version = "", percent = "") => {
    rows.append(h("div", { class: "split-row" },
      "version ", h("input", { type: "number", min: 1, name: "version", value: version, size: 4, class: "num" }),
      " gets ", h("input", { type: "number", min: 0, max: 100, name: "percent", value: percent, class: "num" }), " %"));
  };
  for (const [v, p] of Object.entries(current)) addRow(v, p);
  if (!Object.keys(current).length) { addRow(); addRow(); }
  const form = h("form", { class: "canary", testid: "canary-form" }, h("h3", {}, "Change the split"), rows,
    h("button", { type: "button", class: "secondary", onclick: () => addRow() }, "+ version"), " ",
    h("button", { type: "submit", testid: "apply-split" }, "Apply split"), " ",
    h("button", { type: "button", class: "secondary", testid: "reset-split", onclick: async (ev) => {
      try {
        await ctx.api(`${base}/traffic`, { method: "PUT", body: { traffic: null } });
        ctx.reload();
      } catch (err) {
        const out = ev.target.closest("form").querySelector(".result");
        out.className = "result error";
        out.textContent = err.message;
      }
    } }, `All to ${dep.model_ref}`));
  guarded(form, async () => {
    const traffic = {};
    for (const row of rows.querySelectorAll(".split-row")) {
      const [v, p] = row.querySelectorAll("input");
      if (v.value && p.value !== "") traffic[v.value] = Number(p.value);
    }
    await ctx.api(`${base}/traffic`, { method: "PUT", body: { traffic } });
    setTimeout(ctx.reload, 400);
    return "split applied";
  });
  return form;
}

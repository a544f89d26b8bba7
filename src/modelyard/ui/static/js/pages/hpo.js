// HPO studies (when this server has the /hpo routes): trials chart with the best so far.

import { enc, ifRouted } from "../api.js";
import { lineChart } from "../charts.js";
import { badge, guarded, h, json, kv, link, num, section, table, when } from "../dom.js";

export async function render(el, ctx, [study]) {
  el.append(h("h1", {}, link(ctx.href("hpo"), "HPO studies"), study ? ` / ${study}` : ""));
  const studies = await ifRouted(ctx.api("/hpo/studies"));
  if (studies === null) {
    el.append(section("Not available", h("p", { class: "muted", testid: "hpo-missing" },
      "This server has no hyperparameter-tuning routes (/hpo/studies).")));
    return;
  }
  return study ? detail(el, ctx, study) : list(el, ctx, studies);
}

function counts(c) {
  return Object.entries(c || {}).filter(([, n]) => n).map(([s, n]) => `${s} ${n}`).join(" · ");
}

function list(el, ctx, studies) {
  el.append(section(`Studies (${studies.length})`, table(
    ["study", "state", "objective", "trials", "best", "created"],
    studies.map((s) => [link(ctx.href("hpo", s.name), s.name), badge(s.state),
      `${s.spec.objective.direction} ${s.spec.objective.metric}`, counts(s.counts),
      s.best ? `${num(s.best.value)} (trial ${s.best.number})` : "–", when(s.created_at)]),
    "No studies yet: start one with the SDK.")));
}

async function detail(el, ctx, name) {
  const base = `/hpo/studies/${enc(name)}`;
  const [study, trials] = await Promise.all([ctx.api(base), ctx.api(`${base}/trials`)]);
  const { metric, direction } = study.spec.objective;
  if (ctx.canWrite && study.state === "running") {
    const stop = h("form", { class: "inline" }, h("button", { type: "submit", class: "danger", testid: "stop-study" }, "Stop study"));
    el.append(guarded(stop, async () => {
      await ctx.api(`${base}/stop`, { method: "POST" });
      ctx.reload();
      return "stopped";
    }));
  }
  const sorted = trials.slice().sort((a, b) => a.number - b.number);
  const xs = [], values = [], best = [];
  let bestSoFar = null;
  for (const t of sorted) {
    const v = t.state === "completed" ? t.value : null;
    if (v !== null && (bestSoFar === null || (direction === "maximize" ? v > bestSoFar : v < bestSoFar))) bestSoFar = v;
    xs.push(t.number);
    values.push(v);
    best.push(bestSoFar);
  }
  el.append(section(study.name, kv({ state: badge(study.state), objective: `${direction} ${metric}`,
    trials: `${counts(study.counts)} of ${study.spec.n_trials}`, sampler: study.spec.sampler.kind,
    pruner: study.spec.pruner.kind, "best value": study.best ? num(study.best.value) : null,
    "best params": study.best ? json(study.best.params) : null,
    "best model": study.best_model_version ? link(ctx.href("models", study.best_model_version.model),
      `${study.best_model_version.model}@${study.best_model_version.version}`) : null,
    created: `${when(study.created_at)} by ${study.created_by}`, message: study.message })));
  if (study.state === "running") ctx.every(5000, async () => {
    const now = await ctx.api(base);
    if (now.state !== study.state || JSON.stringify(now.counts) !== JSON.stringify(study.counts)) ctx.reload();
  });
  el.append(section("Trials",
    h("div", { class: "charts", testid: "trials-chart" }, lineChart({ title: `${metric} per trial, and best so far`, xs,
      series: [{ label: metric, values, dots: true }, { label: "best so far", values: best, dots: false }],
      xLabel: "trial" })),
    h("div", { testid: "trials" }, table(["trial", "state", metric, "last step", "params", "job"], sorted.slice(-300).reverse().map((t) =>
      [t.number, badge(t.state), num(t.value), t.last_step ?? "–", json(t.params),
       t.job_id ? link(ctx.href("jobs", t.job_id), t.job_id) : "–"])))));
}

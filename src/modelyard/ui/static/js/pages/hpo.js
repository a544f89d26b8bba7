// HPO studies, shown when this server has the /studies routes: trials chart and best so far.

import { enc, routes } from "../api.js";
import { lineChart } from "../charts.js";
import { badge, h, json, kv, link, num, section, table, when } from "../dom.js";

export async function render(el, ctx, [studyId]) {
  el.append(h("h1", {}, "HPO studies"));
  const paths = await routes();
  if (!paths.some((p) => p.startsWith("/api/v1/projects/{project}/studies"))) {
    el.append(section("Not available", h("p", { class: "muted", testid: "hpo-missing" },
      "This server has no hyperparameter-tuning routes (/studies) yet.")));
    return;
  }
  return studyId ? detail(el, ctx, studyId) : list(el, ctx);
}

function items(page) {
  return Array.isArray(page) ? page : page.items || page.studies || page.trials || [];
}

async function list(el, ctx) {
  const studies = items(await ctx.api("/studies", { query: { limit: 50 } }));
  el.append(section(`Studies (${studies.length})`, table(["study", "state", "direction", "trials", "best", "created"],
    studies.map((s) => [link(ctx.href("hpo", s.id || s.name), s.name || s.id), badge(s.state || "–"),
      s.direction || "–", s.n_trials ?? s.trials ?? "–", num(s.best_value ?? s.best?.value),
      when(s.created_at)]), "No studies yet.")));
}

async function detail(el, ctx, studyId) {
  const base = `/studies/${enc(studyId)}`;
  const [study, trialsPage] = await Promise.all([ctx.api(base), ctx.api(`${base}/trials`, { query: { limit: 1000 } })]);
  const trials = items(trialsPage).slice().sort((a, b) => (a.number ?? 0) - (b.number ?? 0));
  const maximize = String(study.direction || "").startsWith("max");
  const xs = [], values = [], best = [];
  let bestSoFar = null;
  trials.forEach((t, i) => {
    const v = t.value ?? null;
    if (v !== null && (bestSoFar === null || (maximize ? v > bestSoFar : v < bestSoFar))) bestSoFar = v;
    xs.push(t.number ?? i);
    values.push(v);
    best.push(bestSoFar);
  });
  el.append(section(study.name || study.id, kv({ state: study.state, direction: study.direction,
    "best value": num(bestSoFar), "best params": json(study.best_params || study.best?.params || {}) })),
    section("Trials", lineChart({ title: "objective per trial, and best so far", xs,
      series: [{ label: "trial", values }, { label: "best so far", values: best }] }),
    table(["trial", "state", "value", "params", "job"], trials.slice(-200).reverse().map((t) =>
      [t.number ?? "–", badge(t.state || "–"), num(t.value), json(t.params || {}),
       t.job_id ? link(ctx.href("jobs", t.job_id), t.job_id) : "–"]))));
}

// Runs of the registry: paged (10,000 runs are one page at a time), with curves per run.

import { h, kv, json, link, num, section, when } from "../dom.js";
import { pagedTable } from "./pager.js";
import { runCharts } from "./runcharts.js";

export async function render(el, ctx, [runId]) {
  return runId ? detail(el, ctx, runId) : list(el, ctx);
}

async function list(el, ctx) {
  el.append(h("h1", {}, "Runs"));
  const exp = h("input", { name: "experiment", placeholder: "experiment (all)", size: 20 });
  const host = h("div", {});
  const form = h("form", { class: "inline" }, exp, " ", h("button", { type: "submit" }, "Filter"));
  el.append(section("Runs", form, host));
  const draw = () => {
    host.replaceChildren();
    return pagedTable(host, ["run", "experiment", "status", "metrics", "user", "created"],
      async (pageToken) => {
        const page = await ctx.api("/runs", { query: { limit: 50, page_token: pageToken, experiment: exp.value.trim() } });
        return {
          next: page.next_page_token,
          rows: page.runs.map((r) => [link(ctx.href("runs", r.id), r.id), r.experiment, r.status,
            Object.entries(r.metrics || {}).slice(0, 3).map(([k, v]) => `${k} ${num(v, 3)}`).join(" · "),
            r.user, when(r.created_at)]),
        };
      }, { empty: "No runs." });
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); draw(); });
  await draw();
}

async function detail(el, ctx, runId) {
  const { run, node } = await runCharts(ctx, runId);
  el.append(h("h1", {}, link(ctx.href("runs"), "Runs"), " / ", run.id),
    section("Run", kv({ experiment: run.experiment, status: run.status, params: json(run.params),
      tags: json(run.tags), job: run.job_id ? link(ctx.href("jobs", run.job_id), run.job_id) : null,
      "dataset snapshot": run.dataset_snapshot, created: when(run.created_at), ended: when(run.ended_at) })),
    section("Metric curves", node));
}

// Pipelines: their DAGs, runs (with step states on the DAG), re-run and cancel.

import { enc } from "../api.js";
import { dag } from "../graph.js";
import { badge, guarded, h, json, kv, link, section, table, when } from "../dom.js";

const LIVE = new Set(["pending", "queued", "running"]);

export async function render(el, ctx, [name, runId]) {
  if (name === "runs" && runId) return runDetail(el, ctx, runId);
  return name ? pipeline(el, ctx, name) : list(el, ctx);
}

function runRows(ctx, runs) {
  return runs.map((r) => [link(ctx.href("pipelines", "runs", r.id), r.id), r.pipeline, badge(r.state),
    r.trigger, r.created_by, when(r.started_at), when(r.finished_at)]);
}
const RUN_HEADERS = ["run", "pipeline", "state", "trigger", "by", "started", "finished"];

// A package pipeline shows its entry (the module it runs); a built-in its name.
const source = (p) => (p.entry ? `package ${p.entry}` : p.source);

async function list(el, ctx) {
  const [pipes, runs] = await Promise.all([ctx.api("/pipelines"), ctx.api("/pipelines/runs", { query: { limit: 50 } })]);
  el.append(h("h1", {}, "Pipelines"),
    section(`Pipelines (${pipes.length})`, table(["pipeline", "steps", "source", "updated"],
      pipes.map((p) => [link(ctx.href("pipelines", p.name), p.name), p.steps.length, source(p), when(p.updated_at)]),
      "No pipelines registered.")),
    section("Latest runs", table(RUN_HEADERS, runRows(ctx, runs), "No runs yet.")));
}

function stepGraph(pipe, states = {}) {
  const nodes = pipe.steps.map((s) => ({ id: s.name, label: s.name,
    sub: `${s.kind}${states[s.name] ? " · " + states[s.name] : ""}`,
    cls: `s-${states[s.name] || "none"}` }));
  const edges = pipe.steps.flatMap((s) => Object.values(s.inputs).map((up) => ({ src: up, dst: s.name })));
  return dag(nodes, edges, { testid: "pipeline-dag" });
}

function rerun(ctx, name, params, label) {
  const form = h("form", { class: "inline", testid: "rerun-form" },
    h("button", { type: "submit", testid: "rerun" }, label));
  return guarded(form, async () => {
    const run = await ctx.api(`/pipelines/${enc(name)}/runs`, { method: "POST", body: { params } });
    location.hash = ctx.href("pipelines", "runs", run.id);
    return `started ${run.id}`;
  });
}

async function pipeline(el, ctx, name) {
  const [pipe, runs] = await Promise.all([ctx.api(`/pipelines/${enc(name)}`),
    ctx.api(`/pipelines/${enc(name)}/runs`, { query: { limit: 50 } })]);
  el.append(h("h1", {}, link(ctx.href("pipelines"), "Pipelines"), " / ", pipe.name),
    h("p", { class: "muted" }, pipe.description));
  if (ctx.canWrite) el.append(rerun(ctx, name, {}, "Run now"));
  el.append(section("Steps", stepGraph(pipe)),
    section("Definition", kv({ source: source(pipe), package: pipe.package_digest || "—", params: json(pipe.params), hash: pipe.definition_hash })),
    section("Runs", table(RUN_HEADERS, runRows(ctx, runs), "No runs yet.")));
}

async function runDetail(el, ctx, runId) {
  const path = `/pipelines/runs/${enc(runId)}`;
  const run = await ctx.api(path);
  const pipe = await ctx.api(`/pipelines/${enc(run.pipeline)}`);
  el.append(h("h1", {}, link(ctx.href("pipelines"), "Pipelines"), " / ",
    link(ctx.href("pipelines", run.pipeline), run.pipeline), " / ", run.id, " ", badge(run.state)));
  if (ctx.canWrite) {
    const actions = h("div", { class: "actions" }, rerun(ctx, run.pipeline, run.params, "Re-run"));
    if (LIVE.has(run.state)) {
      const cancel = h("form", { class: "inline" },
        h("button", { type: "submit", class: "danger", testid: "cancel-run" }, "Cancel run"));
      actions.append(guarded(cancel, async () => {
        await ctx.api(`${path}/cancel`, { method: "POST" });
        ctx.reload();
        return "cancel requested";
      }));
    }
    el.append(actions);
  }
  const states = Object.fromEntries(run.steps.map((s) => [s.step, s.state]));
  el.append(section("DAG", stepGraph(pipe, states)),
    section("Run", kv({ params: json(run.params), trigger: run.trigger, by: run.created_by,
      started: when(run.started_at), finished: when(run.finished_at), error: run.error })),
    section("Steps", table(["step", "state", "attempts", "cached from", "error", "started", "finished"],
      run.steps.map((s) => [s.step, badge(s.state), s.attempts, s.cached_from || "", s.error || "",
        when(s.started_at), when(s.finished_at)]))),
    // A failed Python step's own words: the end of what it printed and its traceback.
    run.steps.filter((s) => s.state === "failed" && (s.log_tail || s.traceback)).map((s) =>
      section(`Step ${s.step} failed`,
        s.log_tail ? [h("h3", {}, "Last output"), h("pre", { class: "logs", testid: "step-log" }, s.log_tail)] : [],
        s.traceback ? [h("h3", {}, "Traceback"), h("pre", { class: "logs", testid: "step-traceback" }, s.traceback)] : [])));
  if (LIVE.has(run.state)) ctx.every(2000, async () => {
    const now = await ctx.api(path);
    if (now.state !== run.state || JSON.stringify(now.steps.map((s) => s.state)) !==
        JSON.stringify(run.steps.map((s) => s.state))) ctx.reload();
  });
}

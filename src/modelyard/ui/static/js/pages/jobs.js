// Jobs: the queue (paged, filtered by state); per job its logs (live) and metric curves.

import { enc } from "../api.js";
import { badge, guarded, h, json, kv, link, num, section, when } from "../dom.js";
import { pagedTable } from "./pager.js";
import { runCharts } from "./runcharts.js";

const STATES = ["queued", "scheduled", "running", "succeeded", "failed", "cancelled"];
const LIVE = new Set(["queued", "scheduled", "running"]);

export async function render(el, ctx, [jobId]) {
  return jobId ? detail(el, ctx, jobId) : list(el, ctx);
}

async function list(el, ctx) {
  el.append(h("h1", {}, "Jobs"));
  const state = h("select", { name: "state", testid: "state-filter" },
    h("option", { value: "" }, "any state"), STATES.map((s) => h("option", { value: s }, s)));
  const card = section("Queue and history", h("label", {}, "state ", state));
  el.append(card);
  const host = h("div", {});
  card.append(host);
  const draw = async () => {
    host.replaceChildren();
    return pagedTable(host, ["job", "state", "trainer", "queue", "progress", "by", "created"],
      async (pageToken) => {
        const page = await ctx.api("/jobs", { query: { limit: 50, page_token: pageToken, state: state.value || null } });
        return {
          next: page.next_page_token,
          rows: page.items.map((j) => [link(ctx.href("jobs", j.id), j.name), badge(j.state),
            j.trainer || "code", j.queue_position ?? "", progress(j.progress), j.created_by,
            when(j.created_at)]),
        };
      }, { empty: "No jobs match." });
  };
  let current = null;
  state.onchange = async () => { current = await draw(); };
  current = await draw();
  ctx.every(5000, () => current?.refresh());  // the queue moves: keep the shown page current
}

function progress(p) {
  return Object.entries(p || {}).slice(0, 3).map(([k, v]) => `${k} ${num(v, 3)}`).join(" · ");
}

async function detail(el, ctx, jobId) {
  const path = `/jobs/${enc(jobId)}`;
  const job = await ctx.api(path);
  el.append(h("h1", {}, link(ctx.href("jobs"), "Jobs"), " / ", job.name, " ", badge(job.state)));
  if (ctx.canWrite && LIVE.has(job.state)) {
    const form = h("form", { class: "inline", testid: "cancel-form" },
      h("button", { type: "submit", class: "danger", testid: "cancel-job" }, "Cancel job"));
    el.append(guarded(form, async () => {
      await ctx.api(`${path}/cancel`, { method: "POST" });
      ctx.reload();
      return "cancel requested";
    }));
  }
  const mv = job.model_version;
  el.append(section("Job", kv({
    id: job.id, trainer: job.trainer || "uploaded code", "dataset snapshot": job.dataset_snapshot,
    hyperparameters: json(job.hyperparameters), resources: json(job.resources),
    priority: job.priority, attempt: job.attempt, "queue position": job.queue_position,
    created: `${when(job.created_at)} by ${job.created_by}`, started: when(job.started_at),
    finished: when(job.finished_at), message: job.message,
    run: job.run_id, "model version": mv ? link(ctx.href("models", mv.model), `${mv.model}@${mv.version}`) : null,
  })));

  const chartsCard = section("Metric curves");
  el.append(chartsCard);
  const chartsHost = h("div", {});
  chartsCard.append(chartsHost);
  const drawCharts = async () => {  // replaced on each refresh, never appended to
    if (!job.run_id) return chartsHost.replaceChildren(h("p", { class: "muted" }, "No run yet."));
    const { node } = await runCharts(ctx, job.run_id);
    chartsHost.replaceChildren(node);
  };
  await drawCharts();

  const pre = h("pre", { class: "logs", testid: "logs" });
  el.append(section("Logs", pre));
  let offset = 0;
  let state = job.state;
  const pull = async () => {
    const { text, headers } = await ctx.api(`${path}/logs`, { query: { offset }, text: true });
    offset = Number(headers.get("X-Next-Offset") || offset + text.length);
    if (text) {
      pre.append(text);
      pre.scrollTop = pre.scrollHeight;
    }
  };
  await pull();
  if (LIVE.has(state)) {
    let tick = 0;
    ctx.every(1500, async () => {
      if (!LIVE.has(state)) return;
      await pull();
      if (++tick % 4 === 0) {
        const now = (await ctx.api(path)).state;
        if (now !== state) {  // badge, times and actions follow the job (scheduled -> running)
          state = now;
          return ctx.reload();
        }
        await drawCharts();
      }
    });
  }
}


// Models: versions, aliases (promote one), alias history and the lineage graph of a version.

import { enc } from "../api.js";
import { dag } from "../graph.js";
import { guarded, h, json, link, section, short, table, when } from "../dom.js";

export async function render(el, ctx, [name, version]) {
  return name ? detail(el, ctx, name, version) : list(el, ctx);
}

async function list(el, ctx) {
  const models = await ctx.api("/models");
  el.append(h("h1", {}, "Models"), section(`Registered models (${models.length})`, table(
    ["model", "latest", "aliases", "by", "created"],
    models.map((m) => [link(ctx.href("models", m.name), m.name), `v${m.latest_version}`,
      aliasChips(m.aliases), m.created_by, when(m.created_at)]),
    "No models yet: a training job registers one when it finishes.")));
}

function aliasChips(aliases) {
  return Object.entries(aliases).map(([a, v]) => h("span", { class: "chip", "data-alias": a }, `${a} → v${v}`));
}

async function detail(el, ctx, name, version) {
  const base = `/models/${enc(name)}`;
  const [model, versions, history] = await Promise.all([
    ctx.api(base), ctx.api(`${base}/versions`), ctx.api(`${base}/aliases`)]);
  const chosen = Number(version || model.latest_version);
  el.append(h("h1", {}, link(ctx.href("models"), "Models"), " / ", model.name),
    h("p", { testid: "aliases" }, "aliases: ", aliasChips(model.aliases)));

  const recent = versions.slice(-100).reverse();
  el.append(section(`Versions (${versions.length})`, table(
    ["version", "aliases", "framework", "metrics", "job", "dataset snapshot", "created"],
    recent.map((v) => [link(ctx.href("models", name, String(v.version)), `v${v.version}`),
      v.aliases.join(", "), v.framework, json(v.metrics),
      v.job_id ? link(ctx.href("jobs", v.job_id), short(v.job_id, 16)) : "–",
      short(v.dataset_snapshot_id, 16), when(v.created_at)]))));

  if (ctx.canWrite) el.append(promoteForm(ctx, base, recent, chosen));

  el.append(section("Alias history", table(["alias", "from", "to", "by", "when"],
    history.slice(0, 50).map((m) => [m.alias, m.from_version ? `v${m.from_version}` : "–",
      m.to_version ? `v${m.to_version}` : "removed", m.actor, when(m.moved_at)]))));

  const node = `model_version:${name}@${chosen}`;
  const [up, down] = await Promise.all([
    ctx.api("/lineage", { query: { node, direction: "upstream", depth: 4 } }),
    ctx.api("/lineage", { query: { node, direction: "downstream", depth: 4 } })]);
  el.append(section(`Lineage of ${name}@${chosen}`, lineageGraph(ctx, up, down)));
}

function promoteForm(ctx, base, versions, chosen) {
  const alias = h("input", { name: "alias", value: "production", size: 16, required: true, testid: "alias-name" });
  const pick = h("select", { name: "version", testid: "alias-version" },
    versions.map((v) => h("option", { value: v.version }, `v${v.version}`)));
  pick.value = String(chosen);
  const form = h("form", { class: "inline", testid: "promote-form" },
    "point alias ", alias, " at ", pick, " ",
    h("button", { type: "submit", testid: "promote" }, "Promote"));
  guarded(form, async () => {
    const moved = await ctx.api(`${base}/aliases/${enc(alias.value.trim())}`,
      { method: "PUT", body: { version: Number(pick.value) } });
    setTimeout(ctx.reload, 400);
    return `${moved.alias} → v${moved.to_version}`;
  });
  return section("Promote", form);
}

const KIND_PAGE = { job: "jobs", run: "runs", deployment: "deployments" };

function lineageGraph(ctx, up, down) {
  const nodes = new Map();
  const edges = [];
  for (const g of [up, down]) {
    for (const n of g.nodes) nodes.set(`${n.kind}:${n.id}`, n);
    for (const e of g.edges) edges.push({ src: `${e.src_kind}:${e.src_id}`, dst: `${e.dst_kind}:${e.dst_id}`, label: e.relation });
  }
  const root = `${up.root.kind}:${up.root.id}`;
  const drawn = [...nodes.entries()].map(([key, n]) => ({
    id: key, label: n.kind.replace("_", " "), sub: n.kind === "code" ? short(n.id, 16) : n.id,
    cls: `k-${n.kind}${key === root ? " root" : ""}`,
    href: n.kind === "model_version" ? ctx.href("models", ...n.id.split("@"))
      : n.kind === "dataset_version" ? ctx.href("datasets", n.id.split("@")[0])
      : KIND_PAGE[n.kind] ? ctx.href(KIND_PAGE[n.kind], n.kind === "deployment" ? n.attrs?.name || n.id : n.id) : null,
  }));
  const unique = new Map(edges.map((e) => [`${e.src}>${e.dst}>${e.label}`, e]));
  return dag(drawn, [...unique.values()], { testid: "lineage" });
}

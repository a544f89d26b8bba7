// Datasets: a paged list; per dataset its versions, statistics, diffs and snapshots.

import { bars } from "../charts.js";
import { enc } from "../api.js";
import { guarded, h, json, link, num, section, short, table, when } from "../dom.js";
import { pagedTable } from "./pager.js";

export async function render(el, ctx, [name]) {
  return name ? detail(el, ctx, name) : list(el, ctx);
}

async function list(el, ctx) {
  el.append(h("h1", {}, "Datasets"));
  const card = section("All datasets");
  el.append(card);
  await pagedTable(card, ["name", "type", "head version", "description", "created"],
    async (pageToken) => {
      const page = await ctx.api("/datasets", { query: { limit: 50, page_token: pageToken } });
      return {
        next: page.next_page_token,
        rows: page.items.map((d) => [link(ctx.href("datasets", d.name), d.name), d.type,
          `v${d.head_version}`, d.description, when(d.created_at)]),
      };
    }, { empty: "No datasets yet: commit one with the SDK or `modelyard datasets import`." });
}

async function detail(el, ctx, name) {
  const base = `/datasets/${enc(name)}`;
  const [ds, versions, snapshots] = await Promise.all([
    ctx.api(base), ctx.api(`${base}/versions`), ctx.api(`${base}/snapshots`)]);
  el.append(h("h1", {}, link(ctx.href("datasets"), "Datasets"), " / ", ds.name),
    h("p", { class: "muted" }, `${ds.type} · ${ds.description || ""}`));
  const recent = versions.slice(-200).reverse();
  el.append(section(`Versions (${versions.length})`, table(
    ["version", "operation", "message", "rows", "added", "removed", "tags", "author", "committed"],
    recent.map((v) => [`v${v.version}`, v.operation, v.message, num(v.row_count),
      `+${num(v.rows_added)}`, `−${num(v.rows_removed)}`, v.tags.join(", "), v.author,
      when(v.created_at)]))));

  const statsHost = h("div", {});
  const pick = h("select", { name: "version" },
    recent.map((v) => h("option", { value: v.version }, `v${v.version}`)));
  const showStats = async () => {
    const stats = await ctx.api(`${base}/stats`, { query: { version: pick.value } });
    statsHost.replaceChildren(...statsView(stats));
  };
  pick.onchange = showStats;
  el.append(section("Statistics", h("label", {}, "version ", pick), statsHost));
  if (recent.length) await showStats();

  if (versions.length > 1) {
    const from = h("select", { name: "from" }, recent.map((v) => h("option", { value: v.version }, `v${v.version}`)));
    const to = h("select", { name: "to" }, recent.map((v) => h("option", { value: v.version }, `v${v.version}`)));
    from.value = String(recent[1].version);
    const out = h("div", {});
    const form = h("form", { class: "inline", testid: "diff-form" }, "from ", from, " to ", to, " ",
      h("button", { type: "submit" }, "Compare"));
    guarded(form, async () => {
      const d = await ctx.api(`${base}/diff`, { query: { from: from.value, to: to.value } });
      out.replaceChildren(
        h("p", {}, `+${num(d.rows_added)} rows, −${num(d.rows_removed)} rows, ${num(d.rows_unchanged)} unchanged`),
        h("h3", {}, "label change"), bars(d.label_change, { testid: "diff-bars" }));
      return "compared";
    });
    el.append(section("Diff", form, out));
  } else {
    el.append(section("Diff", h("p", { class: "muted" }, "One version only: nothing to compare yet.")));
  }
  el.append(section(`Training snapshots (${snapshots.length})`, table(
    ["id", "status", "version", "seed", "fractions", "hash", "created"],
    snapshots.slice(-100).reverse().map((s) => [short(s.id, 20), s.status, s.version ? `v${s.version}` : "–",
      s.seed, json(s.fractions), short(s.hash), when(s.created_at)]))));
}

function statsView(stats) {
  const out = [h("p", {}, `${num(stats.row_count)} rows`)];
  if (stats.label_counts) out.push(h("h3", {}, "label counts"), bars(stats.label_counts, { testid: "label-bars" }));
  if (stats.summary) {
    out.push(h("h3", {}, "columns"), table(["column", "min", "max", "mean"],
      Object.entries(stats.summary).map(([k, s]) => [k, num(s.min), num(s.max), num(s.mean)])));
  }
  return out;
}

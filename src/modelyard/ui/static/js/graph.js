// A directed graph as a layered SVG: each node's layer is its longest path from a source.
// Layers are columns (left to right) while they fit the page, else rows (top to bottom): a
// ten-step pipeline chain would otherwise run off the right edge.

const NS = "http://www.w3.org/2000/svg";
const W = 170, HGT = 40, GX = 60, GY = 18, VGY = 34;
const MAX_WIDTH = 1180;

function svg(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

// nodes: [{id, label, sub, cls, href}], edges: [{src, dst, label}]
export function dag(nodes, edges, { testid = "graph" } = {}) {
  const ids = new Set(nodes.map((n) => n.id));
  const live = edges.filter((e) => ids.has(e.src) && ids.has(e.dst) && e.src !== e.dst);
  const layer = new Map(nodes.map((n) => [n.id, 0]));
  // Longest-path layering; bounded passes so a cycle cannot loop forever.
  for (let pass = 0; pass < nodes.length; pass++) {
    let changed = false;
    for (const e of live) {
      if (layer.get(e.dst) < layer.get(e.src) + 1 && layer.get(e.src) + 1 < nodes.length) {
        layer.set(e.dst, layer.get(e.src) + 1);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const columns = [];
  for (const n of nodes) (columns[layer.get(n.id)] ||= []).push(n);
  const widest = Math.max(...columns.map((c) => c.length));
  const vertical = 20 + columns.length * (W + GX) - GX > MAX_WIDTH &&
    20 + widest * (W + GX) - GX <= MAX_WIDTH;
  const pos = new Map();
  columns.forEach((col, i) => col.forEach((n, j) => pos.set(n.id, vertical
    ? { x: 10 + j * (W + GX), y: 10 + i * (HGT + VGY) }
    : { x: 10 + i * (W + GX), y: 10 + j * (HGT + GY) })));
  const width = vertical ? 20 + widest * (W + GX) - GX : 20 + columns.length * (W + GX) - GX;
  const height = vertical ? 20 + columns.length * (HGT + VGY) - VGY : 20 + widest * (HGT + GY) - GY;
  const root = svg("svg", { class: "dag", width, height, viewBox: `0 0 ${width} ${height}`,
                            "data-testid": testid, "data-orient": vertical ? "vertical" : "horizontal",
                            role: "img" });
  const defs = svg("defs", {});
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
                                 markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#94a3b8" }));
  defs.append(marker);
  root.append(defs);
  for (const e of live) {
    const a = pos.get(e.src), b = pos.get(e.dst);
    let d;
    if (vertical) {
      const x1 = a.x + W / 2, y1 = a.y + HGT, x2 = b.x + W / 2, y2 = b.y, my = (y1 + y2) / 2;
      d = `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`;
    } else {
      const x1 = a.x + W, y1 = a.y + HGT / 2, x2 = b.x, y2 = b.y + HGT / 2, mx = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
    }
    const path = svg("path", { d, class: "edge", "marker-end": "url(#arrow)" });
    if (e.label) path.append(svg("title", {}, e.label));
    root.append(path);
  }
  for (const n of nodes) {
    const p = pos.get(n.id);
    const g = svg("g", { class: `node ${n.cls || ""}`, transform: `translate(${p.x},${p.y})`,
                         "data-node": n.id });
    g.append(svg("rect", { width: W, height: HGT, rx: 6 }));
    g.append(svg("text", { x: 8, y: 16, class: "label" }, clip(n.label, 22)));
    if (n.sub) g.append(svg("text", { x: 8, y: 32, class: "sub" }, clip(n.sub, 26)));
    g.append(svg("title", {}, `${n.label}${n.sub ? " · " + n.sub : ""}`));
    if (n.href) {
      const a = svg("a", { href: n.href });
      a.append(g);
      root.append(a);
    } else root.append(g);
  }
  const wrap = document.createElement("div");
  wrap.className = "dag-wrap";
  wrap.append(root);
  return wrap;
}

function clip(s, n) {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

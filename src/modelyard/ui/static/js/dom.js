// Small DOM helpers: elements are built with textContent, never innerHTML of API data.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "testid") el.dataset.testid = v;
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function link(href, text) {
  return h("a", { href }, text);
}

export function badge(state) {
  return h("span", { class: `badge s-${state}` }, state);
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso.endsWith("Z") || iso.includes("+") ? iso : iso + "Z");
  return d.toISOString().replace("T", " ").slice(0, 19);
}

export function num(v, digits = 4) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  return Number.isInteger(v) ? v.toLocaleString("en") : v.toPrecision(digits);
}

export function short(id, n = 12) {
  return id && id.length > n + 3 ? id.slice(0, n) + "…" : id || "–";
}

export function table(headers, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), children);
}

export function kv(obj) {
  return h("dl", { class: "kv" },
    Object.entries(obj).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "–")]));
}

export function json(v) {
  return h("code", { class: "json" }, JSON.stringify(v));
}

export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err.message || String(err));
}

// A form's submit handler that shows errors next to the form instead of throwing.
export function guarded(form, fn) {
  const out = h("span", { class: "result" });
  form.append(out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.className = "result";
    out.textContent = "…";
    try {
      out.textContent = (await fn()) || "done";
    } catch (err) {
      out.className = "result error";
      out.textContent = err.message || String(err);
    }
  });
  return form;
}

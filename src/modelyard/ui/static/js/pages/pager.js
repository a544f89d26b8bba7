// Token-paged lists: one page from the API at a time, never the whole collection.

import { h, table } from "../dom.js";

// load(pageToken) -> {rows: [...cells], next: token|null}; draws a table and a "next" button.
export async function pagedTable(host, headers, load, { empty } = {}) {
  const tokens = [null];
  let index = 0;
  const body = h("div", {});
  const prev = h("button", { type: "button", class: "secondary", testid: "prev-page" }, "← previous");
  const next = h("button", { type: "button", class: "secondary", testid: "next-page" }, "next →");
  const where = h("span", { class: "muted" });
  host.append(body, h("div", { class: "pager" }, prev, where, next));
  async function show() {
    const page = await load(tokens[index]);
    tokens[index + 1] = page.next;
    body.replaceChildren(table(headers, page.rows, empty));
    prev.disabled = index === 0;
    next.disabled = !page.next;
    where.textContent = ` page ${index + 1} `;
  }
  const go = (to) => { index = to; show().catch((e) => { where.textContent = ` ${e.message} `; }); };
  prev.onclick = () => go(Math.max(0, index - 1));
  next.onclick = () => go(index + 1);
  await show();
  return { refresh: show };
}

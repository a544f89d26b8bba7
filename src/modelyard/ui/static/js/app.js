// The console's shell: sign-in, project picker, navigation and the `#/project/page/...` router.

import { call, projectApi, token } from "./api.js";
import { clear, errorBox, h } from "./dom.js";
import * as datasets from "./pages/datasets.js";
import * as deployments from "./pages/deployments.js";
import * as hpo from "./pages/hpo.js";
import * as jobs from "./pages/jobs.js";
import * as metrics from "./pages/metrics.js";
import * as models from "./pages/models.js";
import * as pipelines from "./pages/pipelines.js";
import * as runs from "./pages/runs.js";

const PAGES = {
  datasets: { title: "Datasets", mod: datasets },
  jobs: { title: "Jobs", mod: jobs },
  runs: { title: "Runs", mod: runs },
  hpo: { title: "HPO", mod: hpo },
  models: { title: "Models", mod: models },
  deployments: { title: "Deployments", mod: deployments },
  pipelines: { title: "Pipelines", mod: pipelines },
  metrics: { title: "Metrics", mod: metrics },
};

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
let me = null;
let cleanups = [];

function signIn(message) {
  clear(nav);
  clear(who);
  const input = h("input", { type: "password", name: "token", placeholder: "myd_…", size: 50,
                             autocomplete: "off", testid: "token", required: true });
  const out = h("p", { class: "error", role: "alert" }, message || "");
  const form = h("form", { class: "card signin", testid: "signin" },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste an API token. It stays in this tab's session storage only."),
    input, h("button", { type: "submit" }, "Sign in"), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    token.set(input.value.trim());
    me = null;
    try {
      await whoami();
      route();
    } catch (err) {
      token.clear();
      out.textContent = err.status === 401 ? "That token was not accepted." : err.message;
    }
  });
  clear(view, form);
  input.focus();
}

async function whoami() {
  if (!me) me = await call("/api/v1/whoami");
  return me;
}

function roleIn(project) {
  if (me.is_superuser) return "admin";
  return me.roles[project] || null;
}

function header(project) {
  const role = roleIn(project);
  clear(nav, Object.entries(PAGES).map(([key, p]) =>
    h("a", { href: `#/${encodeURIComponent(project)}/${key}`, "data-page": key }, p.title)));
  const signOut = h("button", { class: "link", testid: "signout",
                                onclick: () => { token.clear(); me = null; location.hash = "#/"; signIn(); } },
    "sign out");
  clear(who, h("span", { testid: "whoami" }, `${me.user} · ${project} · ${role || "no role"}`), " ", signOut);
}

async function projectPicker() {
  const projects = await call("/api/v1/projects");
  clear(nav);
  clear(who, h("span", {}, me.user));
  if (projects.length === 1) {
    location.replace(`#/${encodeURIComponent(projects[0].name)}/models`);
    return;
  }
  clear(view, h("section", { class: "card" }, h("h1", {}, "Projects"),
    projects.length ? h("ul", {}, projects.map((p) =>
      h("li", {}, h("a", { href: `#/${encodeURIComponent(p.name)}/models` }, p.name), " ",
        h("span", { class: "muted" }, p.description || ""))))
      : h("p", { class: "muted" }, "You are a member of no project yet.")));
}

export async function route() {
  for (const fn of cleanups) fn();
  cleanups = [];
  if (!token.get()) return signIn();
  try {
    await whoami();
  } catch (err) {
    token.clear();
    return signIn(err.status === 401 ? "Your token is no longer accepted; paste a new one." : err.message);
  }
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (!parts.length) return projectPicker().catch((err) => clear(view, errorBox(err)));
  const [project, page = "models", ...args] = parts;
  const entry = PAGES[page];
  header(project);
  for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", a.dataset.page === page);
  if (!entry) return clear(view, errorBox(new Error(`No page ${page}`)));
  const role = roleIn(project);
  const ctx = {
    project, role, me,
    canWrite: role === "editor" || role === "admin",
    api: projectApi(project),
    href: (...p) => `#/${[project, ...p].map(encodeURIComponent).join("/")}`,
    onCleanup: (fn) => cleanups.push(fn),
    every: (ms, fn) => {  // a refresh that fails leaves the page as it was and tries again
      const id = setInterval(() => Promise.resolve().then(fn).catch((e) => console.warn(e)), ms);
      cleanups.push(() => clearInterval(id));
    },
    reload: () => route(),
  };
  const started = performance.now();
  const body = h("div", { class: "page", "data-page": page, "data-route": location.hash });
  clear(view, body);
  document.title = `${entry.title} · ${project} · modelyard`;
  try {
    await entry.mod.render(body, ctx, args);
    body.dataset.ready = "true";
    body.dataset.renderMs = String(Math.round(performance.now() - started));
  } catch (err) {
    body.append(errorBox(err));
    body.dataset.ready = "error";
  }
}

window.addEventListener("hashchange", route);
route();

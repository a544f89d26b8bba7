// The console's only way to the server: the REST API with the pasted bearer token.

const KEY = "modelyard.token";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

function url(path, query) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === null || v === undefined || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) u.searchParams.append(k, item);
  }
  return u;
}

export async function call(path, { method = "GET", body, query, text = false } = {}) {
  const headers = { Authorization: `Bearer ${token.get() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url(path, query), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) {
    let err = { code: "http_" + res.status, message: `${method} ${path}: HTTP ${res.status}` };
    try {
      const data = await res.json();
      if (data.error && typeof data.error === "object") err = data.error;
      else if (data.detail) err.message = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    } catch (_) { /* not JSON */ }
    throw new ApiError(res.status, err.code, err.message, err.details || {});
  }
  if (text) return { text: await res.text(), headers: res.headers };
  if (res.status === 204) return null;
  return res.json();
}

// Paths of one project: p("demo", "/jobs") -> /api/v1/projects/demo/jobs
export function projectApi(project) {
  const base = `/api/v1/projects/${encodeURIComponent(project)}`;
  return (path, opts) => call(base + path, opts);
}

// A route another component may not ship yet (HPO studies, alert rules): null when the server
// has no such route, the answer otherwise; every other error still throws.
export async function ifRouted(promise) {
  try {
    return await promise;
  } catch (err) {
    // A missing route answers Starlette's bare "Not Found"; a missing object says which one.
    if (err instanceof ApiError && err.status === 404 && err.message === "Not Found") return null;
    throw err;
  }
}

export const enc = encodeURIComponent;

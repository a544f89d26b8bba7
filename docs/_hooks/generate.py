"""MkDocs hook: pages generated from the code at build time, so no reference can go stale.

- `reference/cli.md` from the Typer app (`modelyard.cli.main.app`), every command and option;
- `reference/settings.md` from the `Settings` model: every `MODELYARD_...` variable with its
  default and meaning (a field's description, else the comment beside or above it in the
  source, else the class docstring's line naming it; a field with none is a build warning, so
  `mkdocs build --strict` fails until it is documented);
- `reference/openapi.json`, the app's OpenAPI schema, rendered offline by `swagger-ui-tag`;
- `concepts/components.md`'s diagram from the platform's real component list;
- `assets/vendor/mermaid.min.js`, so diagrams draw offline: Material would fetch mermaid from a
  CDN otherwise. It comes from the npm registry (`npm pack`, which checks its integrity; the
  same registry `make venv` uses for the console) once, into build/docs-vendor/.

Nothing is written into docs/: the files exist only in the build.
"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import re
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.modelyard")


def on_files(files: Files, config: Any) -> Files:
    for uri, content in (("reference/cli.md", cli_reference()),
                         ("reference/settings.md", settings_reference()),
                         ("reference/openapi.json", openapi_json()),
                         ("concepts/components.md", components_page())):
        files.append(File.generated(config, uri, content=content))
    files.append(File.generated(config, "assets/vendor/mermaid.min.js", content=mermaid_js()))
    return files


MERMAID = "11.17.2"
VENDOR = Path(__file__).resolve().parents[2] / "build" / "docs-vendor"


def mermaid_js() -> bytes:
    import os
    import shutil
    import subprocess
    import sys
    import tarfile

    cached = VENDOR / f"mermaid-{MERMAID}.min.js"
    if cached.is_file():
        return cached.read_bytes()
    npm = shutil.which("npm", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                    os.environ.get("PATH", "")]))
    if npm is None:
        log.warning("mermaid %s is not in %s and npm is missing: install Node.js (or `make "
                    "venv`, which brings it) to draw the diagrams", MERMAID, VENDOR)
        return b""
    VENDOR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PATH": f"{Path(npm).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        got = subprocess.run([npm, "pack", f"mermaid@{MERMAID}", "--silent"], cwd=tmp, env=env,
                             capture_output=True, text=True, timeout=300)
        if got.returncode != 0:
            log.warning("npm pack mermaid@%s failed: %s", MERMAID, got.stderr[-500:])
            return b""
        with tarfile.open(Path(tmp) / got.stdout.strip().splitlines()[-1]) as tar:
            member = tar.extractfile("package/dist/mermaid.min.js")
            data = member.read() if member else b""
    partial = cached.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(cached)
    return data


# -- CLI ------------------------------------------------------------------------------------
def cli_reference() -> str:
    # Typer ships its own copy of click (typer._click): read its objects by their attributes.
    import typer.main
    from typer._click import Context

    from modelyard.cli.main import app

    root = typer.main.get_command(app)
    out = ["# CLI reference", "",
           "Generated from the `modelyard` command itself at build time; `modelyard COMMAND "
           "--help` prints the same.", "",
           "Global options go before the command: `modelyard --json --project demo model list`. "
           "The server and token come from `--url`/`MODELYARD_URL` (default "
           "`http://127.0.0.1:8600`) and `--token`/`MODELYARD_TOKEN`, else the admin token in "
           "`$MODELYARD_HOME/admin-token`. An error prints `error (<code>): <message>` on "
           "stderr and exits 1.", ""]
    out += _command(root, Context(root, info_name="modelyard"), "modelyard", 2)
    return "\n".join(out) + "\n"


def _command(cmd: Any, ctx: Any, path: str, level: int) -> list[str]:
    from typer._click import Context

    lines = [f"{'#' * level} `{path}`", ""]
    if cmd.help:
        lines += [_clean_help(cmd.help), ""]
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    lines += ["```text", f"{path} {usage}".rstrip(), "```", ""]
    params = [p for p in cmd.params if p.name not in ("help", "install_completion",
                                                        "show_completion") and not p.hidden]
    if params:
        lines += ["| argument or option | type | default | meaning |", "|---|---|---|---|"]
        lines += [_param_row(p) for p in params]
        lines.append("")
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            lines += _command(sub, Context(sub, info_name=name, parent=ctx), f"{path} {name}",
                              min(level + 1, 4))
    return lines


def _param_row(p: Any) -> str:
    is_option = any(o.startswith("-") for o in p.opts)
    flag = bool(getattr(p, "is_flag", False))
    if is_option:
        names = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
    else:
        names = f"`{(p.metavar or p.name or '').upper()}`"
    meaning = _clean_help(p.help or "")
    if isinstance(p.envvar, str) and p.envvar:
        meaning = f"{meaning} (env `{p.envvar}`)".strip()
    ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)
    kind = "flag" if flag else _type_name(ann).replace("Annotated", "") if ann else ""
    if p.multiple:
        kind += ", repeatable"
    default = None if callable(p.default) else p.default
    if p.required:
        shown = "required"
    elif flag:
        shown = str(bool(default)).lower()
    elif default in (None, "", (), []):
        shown = ""
    else:
        shown = f"`{getattr(default, 'value', default)}`"
    return f"| {names} | {_cell(kind)} | {shown} | {_cell(meaning)} |"


def _clean_help(text: str) -> str:
    text = inspect.cleandoc(text).split("\f")[0]
    return re.sub(r"[ \t]*\n[ \t]*(?=\S)", " ", text.strip()).replace("\n", " ")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# -- Settings -------------------------------------------------------------------------------
# Meanings of fields whose source says nothing: the reference needs one for each, and a new
# field with none anywhere fails the strict build.
MEANINGS: dict[str, str] = {
    "home": "data dir: SQLite file, local blobs, metrics, admin token (created 0700)",
    "host": "where `modelyard server` listens",
    "port": "the port `modelyard server` listens on",
    "blobs.backend": "`local` (files under `root`) or `s3` (the bucket below)",
    "blobs.s3_bucket": "the S3 bucket (AWS, MinIO, any S3-compatible store)",
    "blobs.s3_prefix": "a key prefix inside the bucket",
    "blobs.s3_endpoint_url": "the S3 endpoint; leave unset for AWS",
    "blobs.s3_region": "the bucket's region",
    "blobs.s3_access_key_id": "S3 access key id (never handed to user code but through a job's "
                              "launch ticket exchange; see Security)",
    "blobs.s3_secret_access_key": "S3 secret access key",
    "training.ray_address": "the Ray dashboard URL of the cluster jobs run on with "
                            "`executor=ray`, e.g. `http://127.0.0.1:8265`",
    "training.capacity_gpus": "GPUs the scheduler may hand out (default: those the machine has)",
    "training.capacity_memory_mb": "memory the scheduler may hand out (default: the machine's)",
    "training.poll_interval_s": "how often the scheduler looks at the queue",
    "security.sandbox": "how user code is confined: `auto`, `required` or `off` (see Security)",
    "security.sandbox_uid_base": "first uid of the per-job unprivileged users of a root server",
    "security.package_max_members": "most files (and folders) a code package may hold; past "
                                    "it: 413",
    "security.package_max_unpacked_bytes": "most bytes a code package may unpack to; past it: 413",
    "security.package_max_ratio": "most a member or archive may expand (bombs); below 1 MiB "
                                  "unpacked it is not checked",
    "serving.memory_budget_mb": "memory the loaded models may use together (least recently used "
                                "models are unloaded past it)",
    "serving.max_batch_size": "most requests in one batch of a model",
    "serving.max_batch_delay_ms": "how long a batch waits to fill, while every other batch "
                                  "worker of the model is busy",
    "serving.max_queue": "requests waiting per model; past it: 429 with Retry-After",
    "serving.request_timeout_s": "a prediction waiting longer gets 503",
    "api.max_body_bytes": "larger request bodies get 413",
    "api.max_in_flight": "API requests this process answers at once; 0 turns the limit off",
    "api.queue_wait_s": "how long a request past `max_in_flight` waits for a slot before 429",
    "api.retry_after_s": "the Retry-After of a 429 from admission control",
    "api.default_page_size": "items in a page of a list when the request names no `limit`",
    "api.max_page_size": "the largest `limit` a list accepts",
    "metrics.store": "`embedded` (a DuckDB file this server owns, with rollups) or `database` "
                     "(raw events in the metadata database, as replicas do)",
    "metrics.path": "the DuckDB file (default `<home>/metrics/events.duckdb`)",
    "metrics.raw_retention_days": "days raw prediction events are kept",
    "metrics.rollup_1m_retention_days": "days 1-minute rollups are kept",
    "metrics.rollup_1h_retention_days": "days 1-hour rollups are kept",
}


def settings_reference() -> str:
    from pydantic import BaseModel

    from modelyard.core.settings import Settings

    out = ["# Settings reference", "",
           "Every setting of a modelyard process lives in one typed object, "
           "`modelyard.core.settings.Settings`, read from environment variables with the prefix "
           "`MODELYARD_`; nested sections use `__` (`MODELYARD_SERVING__MEMORY_BUDGET_MB=4096`). "
           "This page is generated from that model at build time.", "",
           "| variable | type | default | meaning |", "|---|---|---|---|"]
    rows: list[str] = []
    sections: list[tuple[str, type[BaseModel]]] = []
    own = _field_comments(Settings)
    for name, field in Settings.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sections.append((name, ann))
            continue
        rows.append(_settings_row(name, name, field, own.get(name), Settings))
    for section, model in sections:
        comments = _field_comments(model)
        for name, field in model.model_fields.items():
            rows.append(_settings_row(f"{section}.{name}", name, field, comments.get(name), model))
    out += rows
    out += ["", "Sections:", ""]
    for section, model in sections:
        doc = inspect.getdoc(model)
        if doc and doc != inspect.getdoc(BaseModel):
            out += [f"- **`{section}`** ({model.__name__}): {_clean_help(doc)}"]
    return "\n".join(out) + "\n"


def _settings_row(path: str, name: str, field: Any, comment: str | None, model: type) -> str:
    env = "MODELYARD_" + path.upper().replace(".", "__")
    meaning = (field.description or MEANINGS.get(path) or comment
               or _from_docstring(model, name))
    if not meaning:
        log.warning("settings reference: %s (%s) has no meaning: give it a description, a "
                    "comment in modelyard/core/settings.py, or an entry in MEANINGS of %s",
                    env, path, Path(__file__).name)
        meaning = ""
    if field.default_factory is not None:
        default = "computed" if path == "home" else ""
        if path == "home":
            default = "`~/.modelyard`"
    elif field.default is None:
        default = ""
    else:
        default = f"`{field.default!s}`"
    kind = _type_name(field.annotation)
    return f"| `{env}` | {kind} | {default} | {_cell(meaning)} |"


def _type_name(ann: Any) -> str:
    text = getattr(ann, "__name__", None) if isinstance(ann, type) else None
    text = text or str(ann).replace("typing.", "").replace("pathlib.", "")
    return _cell(text.replace("NoneType", "None"))


def _field_comments(model: type) -> dict[str, str]:
    """`field: comment` from the class source: a trailing `# ...` or the comment lines above."""
    try:
        src = textwrap.dedent(inspect.getsource(model))
    except (OSError, TypeError):
        return {}
    lines = src.splitlines()
    out: dict[str, str] = {}
    for node in ast.parse(src).body[0].body:  # type: ignore[attr-defined]
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        line = lines[node.lineno - 1]
        trailing = re.search(r"#\s*(.+)$", line)
        above: list[str] = []
        i = node.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#"):
            above.insert(0, lines[i].strip().lstrip("#").strip())
            i -= 1
        text = trailing.group(1) if trailing else " ".join(above)
        if text:
            out[node.target.id] = text
    return out


def _from_docstring(model: type, name: str) -> str | None:
    doc = inspect.getdoc(model) or ""
    for sentence in re.split(r"(?<=\.)\s+", " ".join(doc.split())):
        if f"`{name}`" in sentence:
            return sentence
    return None


# -- OpenAPI --------------------------------------------------------------------------------
def openapi_json() -> str:
    from modelyard.core.settings import Settings
    from modelyard.server.app import create_app

    with tempfile.TemporaryDirectory(prefix="modelyard-docs-") as home:
        app = create_app(Settings(home=Path(home) / "home", background=False))
        schema = app.openapi()
    return json.dumps(schema, indent=1, sort_keys=False)


# -- components -----------------------------------------------------------------------------
def components_page() -> str:
    """The architecture diagram, from the routers the app mounts and the services it builds."""
    from modelyard.server import app as app_module

    routers = _router_modules(app_module)
    lines = ["# Components", "",
             "Generated at build time from the code: the packages under `src/modelyard/`, "
             "which of them imports which (an arrow points from a component to one it uses), "
             "and the routers `modelyard.server.app` mounts.", ""]
    lines += ["```mermaid", "flowchart LR"]
    comps = _component_imports()
    clients = ["sdk", "cli", "ui", "runtime"]
    lines.append("  subgraph clients[clients]")
    lines += [f"    {c}[{c}]" for c in clients if c in comps]
    lines.append("  end")
    lines.append("  subgraph server_proc[server process]")
    lines += [f"    {c}[{c}]" for c in sorted(comps) if c not in clients]
    lines.append("  end")
    for src, dsts in sorted(comps.items()):
        for dst in sorted(dsts):
            if dst != "core":
                lines.append(f"  {src} --> {dst}")
    lines += ["```", "",
              "Every component also uses `core` (settings, errors, database, blob stores); "
              "those arrows are left out.", "",
              "| component | mounted routers |", "|---|---|"]
    for comp in sorted(comps):
        mods = ", ".join(f"`{m}`" for m in routers.get(comp, [])) or "—"
        lines.append(f"| `{comp}` | {mods} |")
    return "\n".join(lines) + "\n"


def _router_modules(app_module: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in getattr(app_module, "ROUTERS", ()):
        module = item[0] if isinstance(item, tuple) else getattr(item, "__module__", str(item))
        if not isinstance(module, str):
            module = getattr(module, "__module__", str(module))
        parts = module.split(".")
        if len(parts) > 1 and parts[0] == "modelyard":
            if module not in found.setdefault(parts[1], []):
                found[parts[1]].append(module)
    return found


def _component_imports() -> dict[str, set[str]]:
    """component -> components it imports, read from the source of src/modelyard/*/."""
    import modelyard

    root = Path(modelyard.__file__).parent
    comps = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    graph: dict[str, set[str]] = {c: set() for c in comps}
    for comp in comps:
        for py in (root / comp).rglob("*.py"):
            if "migrations" in py.parts:
                continue
            for m in re.finditer(r"^\s*(?:from|import)\s+modelyard\.(\w+)", py.read_text(),
                                 re.MULTILINE):
                if m.group(1) in comps and m.group(1) != comp:
                    graph[comp].add(m.group(1))
    return graph

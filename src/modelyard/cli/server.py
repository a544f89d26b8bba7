"""`modelyard server`, `modelyard serve`, `modelyard docs` and `modelyard demo`."""

from __future__ import annotations

import os
from enum import Enum

import typer

APP = "modelyard.server.app:create_app"


class HttpServer(str, Enum):
    granian = "granian"
    uvicorn = "uvicorn"


def register(app: typer.Typer) -> None:
    @app.command("server")
    def server(
        host: str = typer.Option(None, help="bind address (default 127.0.0.1)"),
        port: int = typer.Option(None, help="port (default 8600)"),
        home: str = typer.Option(None, envvar="MODELYARD_HOME", help="data dir"),
    ) -> None:
        """Run the modelyard API server (every component) in the foreground."""
        import uvicorn

        from modelyard.core.settings import Settings
        from modelyard.server.app import create_app

        os.environ.setdefault("MODELYARD_SERVING__TUNE_GC", "1")  # this process only serves
        overrides: dict[str, object] = {}
        if host:
            overrides["host"] = host
        if port:
            overrides["port"] = port
        if home:
            overrides["home"] = home
        settings = Settings(**overrides)  # type: ignore[arg-type]
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")

    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", help="bind address"),
        port: int = typer.Option(8601, help="port"),
        workers: int = typer.Option(1, help="worker processes (each loads its own models)"),
        home: str = typer.Option(None, envvar="MODELYARD_HOME", help="data dir"),
        access_log: bool = typer.Option(False, help="log every request (costs ~5% of a "
                                        "worker's CPU at full load; /metrics counts them)"),
        http_server: HttpServer = typer.Option(
            HttpServer.granian, "--http-server",
            help="granian (Rust HTTP, the default: less CPU per request) or uvicorn"),
    ) -> None:
        """Run a model-server replica: deployments, /predict and the Open Inference Protocol.

        Replicas share the main server's database and blob store (MODELYARD_DATABASE_URL,
        MODELYARD_BLOBS__*) and keep no state of their own: put any number behind a load
        balancer.
        """
        os.environ["MODELYARD_ROLE"] = "serving"
        os.environ.setdefault("MODELYARD_SERVING__TUNE_GC", "1")  # the workers only serve
        # each worker process runs as many batches at once as it has cores of its own
        os.environ.setdefault("MODELYARD_SERVING__BATCH_WORKERS",
                              str(max(1, (os.cpu_count() or 1) // max(1, workers))))
        if home:
            os.environ["MODELYARD_HOME"] = home
        if http_server is HttpServer.uvicorn:
            import uvicorn

            uvicorn.run(APP, factory=True, host=host, port=port, workers=workers,
                        log_level="info", access_log=access_log)
            return
        from granian import Granian
        from granian.constants import Interfaces

        # a worker that dies is started again, as uvicorn's supervisor does
        Granian(APP, address=host, port=port, interface=Interfaces.ASGI, workers=workers,
                factory=True, websockets=False, log_access=access_log,
                respawn_failed_workers=True).serve()

    @app.command("docs")
    def docs(
        ctx: typer.Context,
        open_browser: bool = typer.Option(False, "--open", help="open it in a web browser"),
    ) -> None:
        """Print the URL of the user guide the server serves at /docs/guide/ (offline, for the
        server's version); says so when the server has no built guide (`make docs`)."""
        import webbrowser

        import httpx

        from modelyard.cli._common import Options, console, err_console

        opts: Options = ctx.find_root().obj or Options()
        base = (opts.url or os.environ.get("MODELYARD_URL") or "http://127.0.0.1:8600")
        url = base.rstrip("/") + "/docs/guide/"
        try:
            status = httpx.get(url, timeout=5).status_code
        except httpx.HTTPError as e:
            err_console.print(f"no server answers at {base} ({type(e).__name__}): start one "
                              "with `modelyard server`, or pass --url")
            raise typer.Exit(1) from None
        if status != 200:
            err_console.print(f"the server at {base} has no built guide ({status}): run "
                              "`make docs` in its checkout; the pages are in docs/ meanwhile")
            raise typer.Exit(1)
        console.print(url)
        if open_browser:
            webbrowser.open(url)

    @app.command("demo")
    def demo(
        home: str = typer.Option(None, help="data dir (default: a fresh temporary one)"),
        keep: bool = typer.Option(False, help="keep the data dir afterwards"),
    ) -> None:
        """Run the whole lifecycle against an embedded server and print a summary."""
        from modelyard.demo import run_demo

        raise typer.Exit(run_demo(home=home, keep=keep))

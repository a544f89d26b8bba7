"""`modelyard server` and `modelyard demo`."""

from __future__ import annotations

import typer


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
    ) -> None:
        """Run a model-server replica: deployments, /predict and the Open Inference Protocol.

        Replicas share the main server's database and blob store (MODELYARD_DATABASE_URL,
        MODELYARD_BLOBS__*) and keep no state of their own: put any number behind a load
        balancer.
        """
        import os

        import uvicorn

        os.environ["MODELYARD_ROLE"] = "serving"
        if home:
            os.environ["MODELYARD_HOME"] = home
        uvicorn.run("modelyard.server.app:create_app", factory=True, host=host, port=port,
                    workers=workers, log_level="info", access_log=access_log)

    @app.command("demo")
    def demo(
        home: str = typer.Option(None, help="data dir (default: a fresh temporary one)"),
        keep: bool = typer.Option(False, help="keep the data dir afterwards"),
    ) -> None:
        """Run the whole lifecycle against an embedded server and print a summary."""
        from modelyard.demo import run_demo

        raise typer.Exit(run_demo(home=home, keep=keep))

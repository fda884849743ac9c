"""`loraguard serve`: the validated multi-adapter classification server (FastAPI + uvicorn).

A thin shell over `loraguard.server`: it builds a `ServeConfig`, warns about a public bind address
and runs uvicorn. torch, FastAPI and uvicorn are imported only when the command runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from loraguard.cli.options import MODEL_BASE_HELP

HELP = (
    "Serve the production and candidate adapters of BASE from the registry: POST /v1/classify, "
    "weighted sticky traffic split, shadow candidates, live monitors and alerts, /metrics, /readyz "
    "and a dashboard at /. Registry changes apply without a restart."
)
EXAMPLES = """Examples:

  loraguard serve --registry sqlite:///registry.db --base ./bases/qwen

  LORAGUARD_API_KEY=s3cret loraguard serve --registry team.db --base ./bases/qwen --port 8080

  curl -s localhost:8000/v1/classify -H 'content-type: application/json' \\
       -d '{"body": "Buy followers at ...", "rule": "No advertising", "key": "user-42"}'
"""


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def register(app: typer.Typer) -> None:
    """Add the `serve` command to `app`."""

    @app.command("serve", help=HELP + "\n\n" + EXAMPLES, no_args_is_help=True)
    def serve(
        base: str = typer.Option(..., "--base", help=MODEL_BASE_HELP),
        registry: str | None = typer.Option(
            None,
            "--registry",
            help="Registry URL or SQLite file (default: $LORAGUARD_REGISTRY, else ./loraguard-registry.db).",
        ),
        host: str = typer.Option("127.0.0.1", "--host", help="Bind address (0.0.0.0 exposes it to the network)."),
        port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port (0: any free port)."),
        api_key: str | None = typer.Option(
            None,
            "--api-key",
            envvar="LORAGUARD_API_KEY",
            show_envvar=True,
            help="Require 'Authorization: Bearer KEY' or 'X-API-Key: KEY' (/healthz and /readyz stay open).",
        ),
        max_batch: int = typer.Option(16, "--max-batch", min=1, help="Items per micro-batch (1: no batching)."),
        max_wait_ms: float = typer.Option(
            5.0,
            "--max-wait-ms",
            min=0,
            help="How long a request that finds "
            "the model idle waits for company (requests queued during a batch go "
            "at once).",
        ),
        reload_interval: float = typer.Option(
            1.5, "--reload-interval", min=0.05, help="Seconds between registry polls."
        ),
        template: str = typer.Option("chat", "--template", help="Prompt template, as for `loraguard score`."),
        batch_size: int = typer.Option(16, "--batch-size", min=1, help="Rows per forward pass."),
        prefix_cache: bool = typer.Option(
            True, "--prefix-cache/--no-prefix-cache", help="Compute a prompt prefix shared by a rule's rows once."
        ),
        shadow_queue: int = typer.Option(
            1024, "--shadow-queue", min=0, help="Shadow jobs waiting at most; more are dropped (counted in /metrics)."
        ),
        max_body_bytes: int = typer.Option(1 << 20, "--max-body-bytes", min=1, help="Larger requests get 413."),
        max_items: int = typer.Option(64, "--max-items", min=1, help="Items per batch request."),
        max_field_chars: int = typer.Option(8000, "--max-field-chars", min=1, help="Characters per text field."),
        max_queue: int = typer.Option(
            256,
            "--max-queue",
            min=1,
            help="Items admitted and not answered yet, at most; beyond it a request gets 503 with Retry-After "
            "(at least --max-items).",
        ),
        header_timeout: float = typer.Option(
            10.0,
            "--header-timeout",
            min=0.01,
            help="Seconds a client has to send a request's headers (after connecting or after the previous "
            "response); then the connection is closed.",
        ),
        body_timeout: float = typer.Option(
            30.0, "--body-timeout", min=0.01, help="Seconds a client has to send a request's body (else 408)."
        ),
        keep_alive_timeout: float = typer.Option(
            5.0, "--keep-alive-timeout", min=0.01, help="Seconds an idle keep-alive connection stays open."
        ),
        dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16 or float16."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
        threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads (default: torch's)."),
        log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
        instance: str | None = typer.Option(
            None,
            "--instance",
            help="This server's name for its monitor "
            "snapshots in the registry (default HOST:PORT); a restart with the "
            "same name gets its live statistics back.",
        ),
        snapshot_interval: float = typer.Option(
            30.0,
            "--snapshot-interval",
            min=1.0,
            help="Seconds between monitor snapshots saved in the registry (also at shutdown).",
        ),
    ) -> int:
        from loraguard.errors import InputError
        from loraguard.server.schemas import Limits
        from loraguard.server.service import ServeConfig

        if not (Path(base) / "config.json").is_file():
            raise InputError(
                f"base {base!r}: not a local model folder with a config.json; the server loads "
                "the base's weights (download it first)"
            )
        if host in ("0.0.0.0", "::", ""):
            _err(
                f"Warning: binding to {host or 'all interfaces'} exposes the server to the network"
                + ("" if api_key else " without an API key (set --api-key or $LORAGUARD_API_KEY)")
            )
        config = ServeConfig(
            base=base,
            registry_url=registry,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            reload_interval=reload_interval,
            api_key=api_key or None,
            template=template,
            batch_size=batch_size,
            prefix_cache=prefix_cache,
            shadow_queue=shadow_queue,
            dtype=dtype,
            device=device,
            threads=threads,
            limits=Limits(max_body_bytes=max_body_bytes, max_field_chars=max_field_chars, max_items=max_items),
            instance=instance or f"{host}:{port}",
            snapshot_interval=snapshot_interval,
            max_queue=max_queue,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            keep_alive_timeout=keep_alive_timeout,
        )
        try:
            import uvicorn

            from loraguard.server.app import create_app
            from loraguard.server.connection import uvicorn_options
        except ImportError as exc:
            from loraguard.errors import MissingExtraError

            raise MissingExtraError("loraguard serve", "server") from exc
        app = create_app(config)
        _err(
            f"loraguard serve: base {base}, registry {registry or os.environ.get('LORAGUARD_REGISTRY') or 'default'}"
            f", http://{host}:{port}/ (dashboard), auth {'on' if api_key else 'off'}"
        )
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, **uvicorn_options(config))
        return 0

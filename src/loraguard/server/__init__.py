"""`loraguard serve`: a validated multi-adapter classification server over the adapter registry.

- `app.create_app(config, registry=...)`: the FastAPI app (endpoints, auth, errors);
- `service.ClassifierService`: routing, micro-batching, shadowing, monitors, hot reload;
- `pool`: the base model and its PEFT adapters (verify, load, unload, switch, score);
- `batcher`: the micro-batching collector and the single model thread;
- `routing`: the weighted, sticky routing table; `reload`: the registry watcher;
- `state`: per-adapter monitors and server alerts; `metrics`: Prometheus; `dashboard`: the HTML page.

Importing this package imports neither torch nor FastAPI; `create_app` and the model code do.
"""

from __future__ import annotations

from loraguard.server.schemas import Limits
from loraguard.server.service import ServeConfig

__all__ = ["Limits", "ServeConfig", "create_app"]


def create_app(*args: object, **kwargs: object) -> object:
    """See `loraguard.server.app.create_app` (imported on first use: it needs FastAPI)."""
    from loraguard.server.app import create_app as _create_app

    return _create_app(*args, **kwargs)  # type: ignore[arg-type]

"""Importing Ray and connecting to a cluster, with errors that say what to do.

Ray is the optional `ray` extra, so it is imported here, inside functions, never at module level:
importing loraguard or its CLI must not pay for it. `ray_session(address)` is the one way in:

- `address=None`: connect to `RAY_ADDRESS` when that is set, else start a local Ray instance on
  this machine (stopped again at the end);
- `"local"`: always a new local instance, even with `RAY_ADDRESS` set;
- `"auto"`: the cluster this machine belongs to (after `ray start` on it);
- `"HOST:PORT"`: a cluster's GCS address (run from a node of that cluster);
- `"ray://HOST:10001"`: Ray Client, from outside the cluster (`loraguard[ray]` includes Ray's client).

When Ray is already initialised in this process (a notebook, a test session, an application that
embeds loraguard) that connection is reused and left open. An unreachable address fails in
seconds (a TCP probe before `ray.init`, which would otherwise retry for minutes) with
`DistributedError` naming the address and what to check.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from loraguard.errors import DistributedError, MissingExtraError

__all__ = ["RaySession", "import_ray", "probe_address", "ray_available", "ray_session"]

PROBE_TIMEOUT_S = 5.0
_LOCAL = "local"


def import_ray(feature: str = "--ray") -> ModuleType:
    """`ray` with Ray Data and pyarrow, or `MissingExtraError` naming the extra to install."""
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data
    except ImportError as exc:
        raise MissingExtraError(feature, "ray") from exc
    return ray


def ray_available() -> bool:
    """True when the `ray` extra (Ray Data and pyarrow) can be imported."""
    try:
        import_ray()
    except MissingExtraError:
        return False
    return True


@dataclass(frozen=True)
class RaySession:
    """The Ray connection a run used: where, whether loraguard started it, and what it offers."""

    address: str
    """`local` for an instance started here, else the address connected to (or `existing`)."""
    started_here: bool
    reused: bool
    """Ray was already initialised in this process; loraguard neither started nor stops it."""
    startup_s: float
    """Seconds spent in `ray.init` (0 when reused)."""
    resources: Mapping[str, float] = field(default_factory=dict)
    """`ray.cluster_resources()` when connected (CPU, GPU, memory...)."""

    @property
    def cpus(self) -> float:
        return float(self.resources.get("CPU", 0.0))

    @property
    def gpus(self) -> float:
        return float(self.resources.get("GPU", 0.0))


def probe_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast when `HOST:PORT` (or `ray://HOST:PORT`) does not accept TCP connections."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise DistributedError(
            f"Ray address {address!r}: expected auto, local, HOST:PORT (the head node's GCS port, 6379 by "
            "default) or ray://HOST:PORT (Ray Client, 10001 by default)"
        )
    host = host.strip("[]") or "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise DistributedError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}. Check that the head node is "
            f"running (`ray status` on it), that {host}:{port} is reachable from here, and the address: "
            "ray://HOST:10001 from outside the cluster, auto or HOST:6379 from one of its nodes"
        ) from exc


def _check_client(address: str) -> None:
    if not address.startswith("ray://"):
        return
    try:
        import grpc  # noqa: F401
    except ImportError as exc:
        raise DistributedError(
            f"Ray address {address}: Ray Client (ray://) needs the client extra of Ray: "
            "pip install 'ray[client]' (or run loraguard on a cluster node with --ray-address auto)"
        ) from exc


def _init_kwargs(address: str | None, num_cpus: int | None, temp_dir: str | None) -> dict[str, Any]:
    debug = bool(os.environ.get("LORAGUARD_DEBUG"))
    kwargs: dict[str, Any] = {"log_to_driver": debug, "logging_level": logging.INFO if debug else logging.WARNING}
    if address is None:
        kwargs.update(include_dashboard=False)
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        if temp_dir is not None:
            kwargs["_temp_dir"] = temp_dir
    else:
        kwargs["address"] = address
    return kwargs


@contextlib.contextmanager
def ray_session(
    address: str | None = None, *, num_cpus: int | None = None, temp_dir: str | None = None
) -> Iterator[RaySession]:
    """Connect (or start a local instance) for the `with` block; see the module docstring.

    `num_cpus` and `temp_dir` apply only to a local instance started here. Stops Ray at the end only
    when it was started or connected here.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield RaySession(
            "existing", started_here=False, reused=True, startup_s=0.0, resources=dict(ray.cluster_resources())
        )
        return
    wanted = address if address is not None else (os.environ.get("RAY_ADDRESS") or None)
    if wanted == _LOCAL:
        wanted = None
    if wanted is not None and wanted != "auto":
        _check_client(wanted)
        probe_address(wanted)
    started = time.perf_counter()
    env_address = os.environ.pop("RAY_ADDRESS", None) if address == _LOCAL else None
    try:
        ray.init(**_init_kwargs(wanted, num_cpus, temp_dir))
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
        where = wanted or "a new local instance"
        hint = (
            "start one with `ray start --head` on this machine, or pass --ray-address HOST:6379 / ray://HOST:10001"
            if wanted == "auto"
            else "check the address and that this machine runs the same Ray and Python versions as the cluster"
        )
        raise DistributedError(f"cannot start or connect to Ray ({where}): {exc}. {hint}") from exc
    finally:
        if env_address is not None:
            os.environ["RAY_ADDRESS"] = env_address
    try:
        yield RaySession(
            wanted or _LOCAL,
            started_here=wanted is None,
            reused=False,
            startup_s=time.perf_counter() - started,
            resources=dict(ray.cluster_resources()),
        )
    finally:
        ray.shutdown()

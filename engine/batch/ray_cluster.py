"""The one module that imports Ray: connecting to a cluster and mapping pages over an actor pool with Ray Data.

Pages are a Ray Dataset of tickets; ``map_batches`` runs :class:`engine.batch.workers.PageWorker` in an actor
pool (one model per actor, loaded once; one GPU per actor where the cluster has GPUs, else a share of its
CPUs), and the results stream back to the driver as they are done, in no fixed order.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

import engine
from engine.batch.task import ClusterShape, PageTicket, PageWork, WorkerResult
from engine.batch.workers import PageWorker, driver_precision, pack, unpack
from engine.cores import usable_cores
from engine.errors import JobCancelled, MarginaliaError
from engine.jobs import CancelToken

INSTALL_HINT = ('Running on a cluster needs Ray: install it with  pip install "marginalia[cluster]"  (or '
                'pip install "ray[data]>=2.51,<3")  on this computer and on the cluster.')
CANCEL_GRACE_S = 3.0


class ClusterUnavailable(MarginaliaError):
    """Ray is missing, or the cluster cannot be reached."""


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the batch API
    except ImportError as error:
        raise ClusterUnavailable(INSTALL_HINT) from error
    return ray


def start_on_loopback(ray: Any, **settings: Any) -> None:
    """A Ray of this computer alone, every server of it on 127.0.0.1. Ray turns a loopback ``_node_ip_address``
    into the network address (for clusters) and then listens on every interface; where it may not form clusters
    (its own setting for macOS and Windows) it takes the loopback address, and its servers bind to it."""
    from ray._private import ray_constants

    settings.setdefault("_temp_dir", short_temp_dir())
    settings.setdefault("address", "local")  # not a cluster named by RAY_ADDRESS or left by `ray start`
    may_cluster = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(**settings)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = may_cluster


# <temp>/ray/session_2026-12-03_14-00-18_121188_2393/sockets/plasma_store: Unix sockets' paths stop at 107 bytes.
_SOCKET_PATH_BELOW_TEMP = 72
_UNIX_SOCKET_PATH_LIMIT = 107


def short_temp_dir() -> str | None:
    """Ray's session folder where its socket paths fit: the usual temporary folder (``RAY_TMPDIR``, ``TMPDIR``)
    when short enough, else a private folder of this user in the system's own (a deep ``TMPDIR``, as test
    runners and some desktops set, would stop Ray from starting)."""
    base = os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()
    if os.name != "posix" or len(os.path.join(base, "ray")) + _SOCKET_PATH_BELOW_TEMP <= _UNIX_SOCKET_PATH_LIMIT:
        return None
    private = os.path.join("/tmp", f"marginalia-ray-{os.getuid()}")
    os.makedirs(private, mode=0o700, exist_ok=True)
    if os.stat(private).st_uid != os.getuid():  # another user's: Ray's sockets go nowhere they could reach
        return tempfile.mkdtemp(prefix="marginalia-ray-", dir="/tmp")
    return private


class _Signal:
    """The driver's cancel flag, where every worker can ask for it."""

    def __init__(self) -> None:
        self.flag = False

    def cancel(self) -> None:
        self.flag = True

    def cancelled(self) -> bool:
        return self.flag


class _RayPageWorker:
    """Ray Data's callable class around :class:`PageWorker` (batches are columns of packed tickets)."""

    def __init__(self, work: PageWork, models_folder: str, driver_version: str, signal: Any,
                 precision: dict[str, str]) -> None:
        ray = import_ray()
        self.worker = PageWorker(work, models_folder, driver_version, lambda: ray.get(signal.cancelled.remote()),
                                 precision)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self.worker.run([unpack(item) for item in batch["ticket"]])
        return {"result": np.array([pack(result) for result in results], dtype=object)}


class RayCluster:
    """A connection to a cluster for one batch run. ``address``: ``local`` (a Ray started here for this run, on
    127.0.0.1 only, with this computer's cores), ``auto`` (the cluster this computer belongs to, or
    ``RAY_ADDRESS``) or a cluster's address (``ray://head:10001``). Where Ray is already connected in this
    process, that connection is used and left open."""

    def __init__(self, address: str, *, cpus: int | None = None) -> None:
        self.address, self.cpus, self.owned = address, cpus, False
        self.ray = import_ray()

    def __enter__(self) -> RayCluster:
        if not self.ray.is_initialized():
            settings: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                        "logging_level": "ERROR", "configure_logging": True}
            try:
                if self.address == "local":
                    start_on_loopback(self.ray, num_cpus=self.cpus or usable_cores(), **settings)
                else:
                    self.ray.init(address=self.address, **settings)
            except Exception as error:  # noqa: BLE001 - Ray's own errors say what went wrong; the CLI says it plainly
                raise ClusterUnavailable(f"Cannot reach the Ray cluster at {self.address}: {error}") from error
            self.owned = True
        context = self.ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.owned:
            self.ray.shutdown()

    def shape(self) -> ClusterShape:
        resources = self.ray.cluster_resources()
        nodes = sum(1 for node in self.ray.nodes() if node.get("Alive"))
        return ClusterShape(int(resources.get("CPU", 0)), int(resources.get("GPU", 0)), nodes)

    def map_pages(self, work: PageWork, tickets: list[PageTicket], *, batch_size: int, cpus_per_worker: float,
                  gpus: bool, models_folder: str, cancel: CancelToken) -> Iterator[WorkerResult]:
        """Results as workers finish them. When ``cancelled`` is set, workers are told (they stop within a
        second), finished results still arriving within a few seconds are given, then :class:`JobCancelled`.
        Ctrl+C here cancels so, rather than leaving the workers running."""
        shape = self.shape()
        workers = shape.gpus if gpus else max(1, int(shape.cpus // cpus_per_worker))
        workers = max(1, min(workers, -(-len(tickets) // batch_size)))
        signal = self.ray.remote(num_cpus=0)(_Signal).remote()
        # One block per batch: a worker's results come back when its block is done, so pages stream back as
        # they finish (a cancelled run keeps them) rather than a whole block's worth at a time.
        dataset = self.ray.data.from_items([{"ticket": pack(ticket)} for ticket in tickets],
                                           override_num_blocks=-(-len(tickets) // batch_size))
        mapped = dataset.map_batches(
            _RayPageWorker, batch_size=batch_size, batch_format="numpy",
            fn_constructor_kwargs={"work": work, "models_folder": models_folder,
                                   "driver_version": engine.__version__, "signal": signal,
                                   "precision": driver_precision()},
            compute=self.ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1 if gpus else cpus_per_worker, num_gpus=1 if gpus else 0)
        arrived: queue.Queue[Any] = queue.Queue()
        done = object()

        def consume() -> None:
            try:
                for batch in mapped.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
                    for item in batch["result"]:
                        arrived.put(unpack(item))
            except BaseException as error:  # noqa: BLE001 - handed to the driver's thread
                arrived.put(error)
            arrived.put(done)

        threading.Thread(target=consume, name="ray-results", daemon=True).start()
        deadline = None
        while True:
            if cancel.cancelled and deadline is None:
                signal.cancel.remote()
                deadline = threading.Event()
                threading.Timer(CANCEL_GRACE_S, deadline.set).start()
            try:
                item = arrived.get(timeout=0.2)
            except KeyboardInterrupt:
                cancel.cancel()
                continue
            except queue.Empty:
                if deadline is not None and deadline.is_set():
                    raise JobCancelled() from None
                continue
            if item is done:
                if deadline is not None:
                    raise JobCancelled()
                return
            if isinstance(item, BaseException):
                raise ClusterUnavailable(f"The cluster stopped the run: {_plain(item)}") from item
            yield item


def _plain(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__

"""`--executor ray`: the chunks of a run spread over a pool of Ray workers, one backend each.

The driver stays the only reader and the only writer: it reads the input, skips finished chunks,
sends each worker the few columns the steps read, and writes the parts and markers of what comes
back exactly as a local run does. Workers pull work (each holds at most `QUEUED` chunks), so a slow
node takes fewer chunks and nobody waits for it. A worker or node that dies loses only the chunks it
held: they go back to the front of the queue for another worker and a replacement worker is started;
a chunk that has lost `chunk_tries` workers stops the run (it may be what kills them), keeping every
finished chunk for a rerun. A killed driver takes its workers with it (Ray ties an actor to its
owner), and the rerun resumes from the markers like a local run.
"""

from __future__ import annotations

import logging
import math
import socket
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from rich.console import Console

from triplegen.backends.base import BackendStats
from triplegen.config import BackendOptions, GenerateConfig
from triplegen.errors import MissingExtraError, TripleGenError
from triplegen.orchestration.executors.ray_worker import ChunkResult, ChunkWorker, WorkerInfo, portable
from triplegen.orchestration.pipeline import Chunk
from triplegen.orchestration.plan import GenerationPlan

QUEUED = 2  # chunks held per worker: one running, one waiting, so a worker never idles on the driver
PROBE_TIMEOUT_S = 5.0


def _import_ray():
    try:
        import ray
    except ImportError:
        raise MissingExtraError("--executor ray", "ray", "ray") from None
    return ray


def connect(address: str | None) -> bool:
    """Join the cluster (`None`: RAY_ADDRESS, else a new local one); True if this call started Ray.

    A connection the caller already made (a notebook, a test) is used as it is and left open.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    if address and address != "auto" and ":" in address and "://" not in address:
        _probe(address)  # Ray itself retries an address where nothing listens for many minutes
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise TripleGenError(f"cannot join the Ray cluster at {address or 'RAY_ADDRESS'}: "
                             f"{str(exc).strip().splitlines()[0]}") from None
    return True


def _probe(address: str) -> None:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            return
    except ValueError:
        raise TripleGenError(f"--ray-address {address}: expected HOST:PORT (the head's GCS port, 6379 by default) "
                             "or 'auto'") from None
    except OSError as exc:
        raise TripleGenError(f"--ray-address {address}: no Ray head answers there ({exc.strerror or exc}); "
                             "start one with `ray start --head` or fix the address") from None


def worker_shape(config: GenerateConfig, cluster: dict[str, float]) -> tuple[float, float, int]:
    """CPUs and GPUs per worker, and how many workers: `--ray-workers`, or as many as the cluster holds.

    Without `--ray-workers` a cluster that cannot hold one worker is refused at once (rather than
    waiting forever); with it, workers wait for room, as on a cluster whose autoscaler adds nodes.
    """
    options = config.ray
    backend = config.resolved_backend()
    gpus = options.gpus_per_worker
    if gpus is None:
        gpus = float(config.engine.tensor_parallel_size) if backend == "vllm" else 0.0
    if options.workers is not None:
        return options.cpus_per_worker, gpus, options.workers
    fits = []
    if gpus > 0:
        have = cluster.get("GPU", 0.0)
        if have < gpus:
            hint = " (--ray-gpus-per-worker 0 runs a CPU build of vLLM)" if backend == "vllm" else ""
            raise TripleGenError(f"a worker needs {gpus:g} GPU(s) but the Ray cluster has {have:g}{hint}")
        fits.append(math.floor(have / gpus))
    if options.cpus_per_worker > 0:
        have = cluster.get("CPU", 0.0)
        if have < options.cpus_per_worker:
            raise TripleGenError(f"a worker needs {options.cpus_per_worker:g} CPU(s) (--ray-cpus-per-worker) "
                                 f"but the Ray cluster has {have:g}")
        fits.append(math.floor(have / options.cpus_per_worker))
    if not fits:
        raise TripleGenError("workers that ask for no CPU and no GPU need --ray-workers N")
    count = min(fits)
    if backend == "openai":  # every worker holds at least one request in flight
        count = min(count, config.server.concurrency)
    return options.cpus_per_worker, gpus, count


def worker_config(config: GenerateConfig, workers: int) -> BackendOptions:
    """What a worker builds its backends from: the run's, with its share of `--concurrency`."""
    return config.backend_options().with_concurrency(-(-config.server.concurrency // workers))


@dataclass
class RemoteBackend:
    """The workers' backend as the driver sees it: identity for provenance, counters summed over workers."""

    name: str
    model: str
    deterministic: bool
    needs_messages: bool
    stats: BackendStats | None = None

    def close(self) -> None:
        """The workers own the real backends; `RayWorkers.close` stops them."""


@dataclass
class _Task:
    chunk: Chunk
    worker: object
    tries: int


class RayWorkers:
    """A pool of `ChunkWorker` actors on a Ray cluster; `run(chunks)` yields them with their outcomes."""

    def __init__(self, config: GenerateConfig, plan: GenerationPlan, console: Console):
        self.ray = ray = _import_ray()
        self.config, self.plan, self.console = config, plan, console
        self.owns_ray = connect(config.ray.address)
        try:
            cpus, gpus, count = worker_shape(config, ray.cluster_resources())
            self._actor = ray.remote(ChunkWorker).options(num_cpus=cpus, num_gpus=gpus, max_restarts=0,
                                                          max_task_retries=0)
            self._worker_options = worker_config(config, count)
            self.size, self.replacements = count, 0
            self.starting: dict = {}  # start() ref -> actor
            self.ready: dict = {}  # actor -> WorkerInfo
            self.load: dict = {}  # actor -> chunks it holds
            self.snapshots: dict = {}  # actor -> its backend's counters
            self.finished = False
            for _ in range(count):
                self._spawn()
            if not config.quiet:
                wait = " (each loads a vLLM engine: minutes)" if config.resolved_backend() == "vllm" else ""
                console.print(f"Ray: starting {count} worker(s) on the cluster at {self._address()}{wait}...")
            first = self._wait_for_first()
            self.backend = RemoteBackend(first.name, first.model, first.deterministic, first.needs_messages,
                                         BackendStats() if first.counts else None)
            self._announce(cpus, gpus)
        except BaseException:
            self.close()
            raise

    def _spawn(self) -> None:
        actor = self._actor.remote(self._worker_options, self.plan)
        self.starting[actor.start.remote()] = actor

    def _wait_for_first(self) -> WorkerInfo:
        while not self.ready:
            done, _ = self.ray.wait(list(self.starting), num_returns=1)
            self._started(done[0])
        return next(iter(self.ready.values()))

    def _started(self, ref) -> None:
        """Take in a worker whose start() finished: ready, or lost before it could start."""
        actor = self.starting.pop(ref)
        try:
            info = self._get(ref)
        except _Lost as lost:
            self._replace(actor, f"a worker was lost while starting: {lost}")
            return
        if info.version != self._version():
            raise TripleGenError(f"the Ray worker on {info.node} runs triplegen {info.version}, this driver "
                                 f"{self._version()}; install the same version on every node")
        self.ready[actor], self.load[actor] = info, 0

    @staticmethod
    def _version() -> str:
        from triplegen import __version__

        return __version__

    def _get(self, ref):
        """`ray.get`, with a worker's user-facing error raised as itself and a lost worker as `_Lost`."""
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, TripleGenError):
                raise portable(cause) from None
            raise
        except (exceptions.RayActorError, exceptions.ObjectLostError) as error:
            raise _Lost(str(error).strip().splitlines()[0]) from None

    def _replace(self, actor, why: str) -> None:
        self.ready.pop(actor, None)
        self.load.pop(actor, None)
        self.ray.kill(actor, no_restart=True)
        if self.replacements >= self.size * self.config.ray.chunk_tries:
            raise TripleGenError(f"{why}; {self.replacements} workers were replaced already, giving up. "
                                 "Finished chunks are kept: run the same command again to resume")
        self.replacements += 1
        if not self.config.quiet:
            self.console.print(f"[yellow]Ray: {why}; starting a replacement worker[/]")
        self._spawn()

    def _announce(self, cpus: float, gpus: float) -> None:
        if self.config.quiet:
            return
        shape = f"{cpus:g} CPU" + (f", {gpus:g} GPU" if gpus else "")
        share = f", {self._worker_options.server.concurrency} requests in flight each" \
            if self.backend.name == "openai" else ""
        self.console.print(f"Ray: {len(self.ready)} of {self.size} worker(s) ready ({shape} each{share}).")

    def _address(self) -> str:
        return self.ray.get_runtime_context().gcs_address

    def run(self, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        """Each chunk back with its outcomes (in the order they finish), each exactly once."""
        pending = iter(chunks)
        queue: deque[tuple[Chunk, int]] = deque()  # chunks taken back from lost workers, with their tries
        in_flight: dict = {}  # process() ref -> _Task
        self._drained = False  # every chunk of the input was handed out once
        while True:
            self._dispatch(pending, queue, in_flight)
            if self._drained and not in_flight and not queue:
                self.finished = True
                return
            if not self.ready and not self.starting:
                raise TripleGenError("every Ray worker was lost; finished chunks are kept, rerun to resume")
            done, _ = self.ray.wait([*in_flight, *self.starting], num_returns=1)
            ref = done[0]
            if ref in self.starting:
                self._started(ref)
                continue
            task = in_flight.pop(ref)
            if task.worker in self.load:
                self.load[task.worker] -= 1
            try:
                result: ChunkResult = self._get(ref)
            except _Lost as lost:
                self._lost(task, str(lost), queue)
                continue
            self._dispatch(pending, queue, in_flight)  # keep the workers busy while the driver writes
            self._count(task.worker, result.stats)
            yield replace(result.chunk, rows=task.chunk.rows)

    def _dispatch(self, pending: Iterator[Chunk], queue: deque, in_flight: dict) -> None:
        columns = self.plan.input_columns
        for actor in list(self.ready):
            while self.load.get(actor, QUEUED) < QUEUED:
                if queue:
                    chunk, tries = queue.popleft()
                else:
                    chunk = next(pending, None)
                    if chunk is None:
                        self._drained = True
                        return
                    tries = 0
                ref = actor.process.remote(chunk.index, chunk.rows.select(columns), chunk.wanted)
                in_flight[ref] = _Task(chunk, actor, tries + 1)
                self.load[actor] += 1

    def _lost(self, task: _Task, why: str, queue: deque) -> None:
        index, tries = task.chunk.index, task.tries
        if tries >= self.config.ray.chunk_tries:
            raise TripleGenError(f"chunk {index} lost its Ray worker {tries} times (last: {why}); "
                                 "finished chunks are kept: run the same command again to resume")
        queue.appendleft((task.chunk, tries))
        info = self.ready.get(task.worker)
        where = f" on {info.node} (pid {info.pid})" if info else ""
        if task.worker in self.ready:
            self._replace(task.worker, f"a worker{where} was lost ({why}); chunk {index} goes back in the queue")
        elif not self.config.quiet:
            self.console.print(f"[yellow]Ray: chunk {index} goes back in the queue (its worker was lost)[/]")

    def _count(self, actor, stats: dict | None) -> None:
        if stats is None or self.backend.stats is None:
            return
        self.snapshots[actor] = stats
        total = self.backend.stats
        for name in ("requests", "prompt_tokens", "completion_tokens", "server_errors", "retries"):
            setattr(total, name, sum(s[name] for s in self.snapshots.values()))

    def close(self) -> None:
        """Stop the workers and leave a cluster this run started.

        After a finished run the idle workers shut their backends down cleanly; after an error or
        Ctrl-C they are killed at once (a stop would queue behind their chunks), and Ray ends the
        processes they started, a vLLM engine's included.
        """
        ray = self.ray
        if not ray.is_initialized():
            return
        actors = [*getattr(self, "ready", {}), *getattr(self, "starting", {}).values()]
        if actors and getattr(self, "finished", False):
            stops = [actor.stop.remote() for actor in self.ready]
            ray.wait(stops, num_returns=len(stops), timeout=60)
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if self.owns_ray:
            ray.shutdown()


class _Lost(Exception):
    """A worker died or became unreachable, with its work."""

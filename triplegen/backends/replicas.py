"""`--data-parallel-size N` for the in-process backend: N engine replicas, one worker process each.

vLLM refuses `LLM(data_parallel_size>1)` inside one process. A dense model needs no coordination
between data-parallel replicas, so each worker process owns one `vllm.LLM` on its own group of
`tensor_parallel_size` GPUs (its own CUDA_VISIBLE_DEVICES) and every chunk is split evenly between
them. Requests and completions cross the process boundary as plain data.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
from typing import Any

from triplegen.backends.base import Completion
from triplegen.errors import BackendUnavailable, TripleGenError

READY_TIMEOUT_S = 3600  # loading a large model from a network disk can take many minutes


def device_groups(replicas: int, tensor_parallel_size: int, visible: str | None) -> list[str]:
    """CUDA_VISIBLE_DEVICES for each replica: consecutive groups of the devices this process sees."""
    devices = [d.strip() for d in visible.split(",") if d.strip()] if visible else None
    needed = replicas * tensor_parallel_size
    if devices is None:
        devices = [str(i) for i in range(needed)]
    if len(devices) < needed:
        raise TripleGenError(
            f"--data-parallel-size {replicas} x --tensor-parallel-size {tensor_parallel_size} needs "
            f"{needed} devices; CUDA_VISIBLE_DEVICES lists {len(devices)}"
        )
    return [",".join(devices[i * tensor_parallel_size:(i + 1) * tensor_parallel_size]) for i in range(replicas)]


def _serve(connection, engine_kwargs: dict[str, Any], devices: str) -> None:
    """A replica: load the engine, then answer chat batches until told to stop (None)."""
    os.environ["CUDA_VISIBLE_DEVICES"] = devices
    try:
        from triplegen.backends.vllm import load_engine, run_chat

        llm = load_engine(engine_kwargs)
    except Exception as exc:  # reported to the parent as one line
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    try:
        connection.send(("ready", os.getpid()))
        while (message := connection.recv()) is not None:
            conversations, specs, schemas = message
            try:
                connection.send(("ok", run_chat(llm, conversations, specs, schemas)))
            except BackendUnavailable as exc:  # its engine failed: the parent stops the run
                connection.send(("failed", str(exc)))
                return
    except (EOFError, OSError):
        pass  # the parent is gone
    finally:
        # a multiprocessing child skips atexit handlers, so vLLM's own cleanup would never run and
        # its engine process would outlive the replica
        llm.llm_engine.engine_core.shutdown()


class ReplicaPool:
    """N engine replicas in worker processes; `chat` splits a batch evenly over them."""

    def __init__(self, engine_kwargs: dict[str, Any], replicas: int, tensor_parallel_size: int = 1):
        context = multiprocessing.get_context("spawn")
        groups = device_groups(replicas, tensor_parallel_size, os.environ.get("CUDA_VISIBLE_DEVICES"))
        self._workers = []
        for devices in groups:
            parent, child = context.Pipe()
            # not a daemon: vLLM starts processes of its own inside each replica
            process = context.Process(target=_serve, args=(child, engine_kwargs, devices), name="triplegen-replica")
            process.start()
            child.close()
            self._workers.append((process, parent))
        atexit.register(self.close)
        self.pids = [self._receive(index, READY_TIMEOUT_S) for index in range(replicas)]
        self.served = [0] * replicas  # requests answered per replica

    def _receive(self, index: int, timeout_s: float | None = None):
        process, connection = self._workers[index]
        try:
            if timeout_s is not None and not connection.poll(timeout_s):
                raise TripleGenError(f"vLLM replica {index} did not load within {timeout_s:.0f}s")
            kind, payload = connection.recv()
        except (EOFError, OSError):
            self.close()
            raise BackendUnavailable(f"vLLM replica {index} (pid {process.pid}) died") from None
        if kind == "error":
            self.close()
            raise TripleGenError(f"vLLM replica {index} could not start: {payload}")
        if kind == "failed":
            self.close()
            raise BackendUnavailable(f"vLLM replica {index}: {payload}")
        return payload

    @property
    def processes(self) -> list:
        return [process for process, _ in self._workers]

    def chat(self, conversations: list, specs: list[dict[str, Any]], schemas: list[dict]) -> list[Completion]:
        count = len(self._workers)
        size = -(-len(conversations) // count)
        slices = [(i * size, min((i + 1) * size, len(conversations))) for i in range(count)]
        busy = []
        for index, (start, stop) in enumerate(slices):
            if start < stop:
                self._workers[index][1].send((conversations[start:stop], specs[start:stop], schemas[start:stop]))
                busy.append(index)
        completions: list[Completion] = []
        for index in busy:
            part = self._receive(index)
            self.served[index] += len(part)
            completions.extend(part)
        return completions

    def close(self) -> None:
        for process, connection in self._workers:
            try:
                connection.send(None)
            except (OSError, ValueError):
                pass
        for process, connection in self._workers:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
            connection.close()
        self._workers = []

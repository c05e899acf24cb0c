"""Session-wide real models, engines and servers for the LLM backend tests.

Each engine and server is started at most once per session (they take 25-60 s on two cores) and
shared by every test; the server process is terminated at the end of the session.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

TINY_MODEL_NAME = "tiny-llama"
SERVER_START_TIMEOUT_S = 300


def engine_options():
    from triplegen.config import EngineOptions

    return EngineOptions(dtype="float32", enforce_eager=True, max_model_len=512)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A real `vllm.entrypoints.openai.api_server` on 127.0.0.1, its URL and its log."""

    def __init__(self, model_dir: Path, served_name: str, log_path: Path, port: int | None = None):
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.model = served_name
        self.log_path = log_path
        opts = engine_options()
        command = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir), "--served-model-name", served_name,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", opts.dtype, "--max-model-len", str(opts.max_model_len), "--enforce-eager",
            "--seed", "0", "--disable-log-stats",
            "--no-enable-chunked-prefill",  # vllm-cpu crashes on seeded requests prefilled in pieces
        ]  # fmt: skip
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM server exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as response:
                    if self.model.encode() in response.read():
                        return
            except OSError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"vLLM server not ready after {SERVER_START_TIMEOUT_S}s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL the server and every process it started (its engine), as a crash would."""
        import psutil

        try:
            family = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        for member in family:
            try:
                member.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait()
        psutil.wait_procs(family, timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture(scope="session", autouse=True)
def _release_engines_at_the_end():
    """Shut the session's in-process engines down while logging still works."""
    yield
    if "triplegen.backends.vllm" in sys.modules:
        sys.modules["triplegen.backends.vllm"].release_engines()


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """A tiny random Llama + locally trained BPE tokenizer with a chat template."""
    require("transformers", "the tiny Llama fixture is built with transformers")
    from tests.llm.tiny_llama import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_engine(tiny_llama_dir):
    """The session's one in-process `vllm.LLM` for the tiny Llama (shared via the backend cache)."""
    require("vllm", "the vllm backend tests run the real engine")
    from triplegen.backends.vllm import shared_engine

    return shared_engine(str(tiny_llama_dir), engine_options())


@pytest.fixture(scope="session")
def tiny_server(tiny_llama_dir, tmp_path_factory):
    """The session's one real vLLM OpenAI-compatible server for the tiny Llama."""
    require("vllm", "the openai backend tests run a real vLLM server")
    server = ServerProcess(
        tiny_llama_dir, TINY_MODEL_NAME, tmp_path_factory.mktemp("server") / "server.log"
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def smollm2_dir(request) -> Path:
    """SmolLM2-135M-Instruct as a float32 HF folder (`smollm2_model`, tests/conftest.py), for tests of the
    real engine: skipped before the conversion where vLLM is absent."""
    require("vllm", "the SmolLM2 tests run the real engine")
    return request.getfixturevalue("smollm2_model")


@pytest.fixture(scope="session")
def smollm2_engine(smollm2_dir):
    """The session's one in-process `vllm.LLM` for SmolLM2 (shared via the backend cache)."""
    from triplegen.backends.vllm import shared_engine

    return shared_engine(str(smollm2_dir), engine_options())

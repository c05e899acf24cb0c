"""An HTTP proxy in front of a real vLLM server that breaks a share of the chat requests on purpose.

Faults: HTTP 500, HTTP 429, a response held past the client's timeout, a connection dropped without
an answer, and a 200 whose body is cut-off JSON. `strip_schema=True` removes `response_format` from
every chat request, imitating a server that ignores the schema; `poison` answers HTTP 500 to every
chat request whose body contains that text (one request that fails while the others pass). `port`
serves on a chosen port, e.g. where a killed server was. Setting `hang = True` at any time holds
every request (chat or not) unanswered, as a stopped (SIGSTOP) server does, until `hang` is cleared
or `MAX_HOLD_S` passes, then drops it. Loopback only; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter

FAULTS = ("500", "429", "timeout", "drop", "malformed")
MAX_BODY = 10 * 1024 * 1024
MAX_HOLD_S = 30.0


class FaultProxy:
    """`with FaultProxy(origin, rate=0.3) as proxy:` then point a client at `proxy.base_url`."""

    def __init__(
        self,
        upstream_origin: str,  # "http://127.0.0.1:PORT" of the real server
        rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        seed: int = 0,
        hold_s: float = 5.0,
        strip_schema: bool = False,
        poison: str | None = None,
        port: int = 0,
    ):
        assert upstream_origin.startswith("http://127.0.0.1:"), "loopback only"
        assert set(faults) <= set(FAULTS) and 0.0 <= rate <= 1.0
        self.upstream = upstream_origin.rstrip("/")
        self.rate, self.faults, self.hold_s = rate, faults, min(hold_s, MAX_HOLD_S)
        self.strip_schema = strip_schema
        self.poison = poison.encode() if poison else None
        self.random = random.Random(seed)
        self.counts: Counter[str] = Counter()  # injected faults by kind, and "passed"
        self.hang = False  # True: every request is held unanswered (a stopped server)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        import aiohttp

        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as self._session:
            server = await asyncio.start_server(self._connection, "127.0.0.1", self.port, reuse_address=True)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            async with server:
                await self._stop.wait()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                if not await self._answer(request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _answer(self, request, writer) -> bool:
        """Write one response; False when the connection must be closed."""
        method, path, headers, body = request
        if self.hang:
            self.counts["held"] += 1
            await self._hold()
            return False
        is_chat = method == "POST" and path.endswith("/chat/completions")
        if is_chat and self.strip_schema:
            payload = json.loads(body)
            payload.pop("response_format", None)
            body = json.dumps(payload).encode()
        fault = self.random.choice(self.faults) if is_chat and self.random.random() < self.rate else None
        if is_chat and self.poison is not None and self.poison in body:
            fault = "500"
        self.counts[fault or "passed"] += 1
        if fault == "drop":
            return False
        if fault == "timeout":
            await asyncio.sleep(self.hold_s)
            return False
        if fault in ("500", "429"):
            status = int(fault)
            extra = {"retry-after": "0"} if status == 429 else {}
            _write(writer, status, b'{"error": {"message": "injected fault", "code": %d}}' % status, extra)
            await writer.drain()
            return True
        status, response_body = await self._forward(method, path, headers, body)
        if self.hang:  # stopped while the server worked on it: its answer never comes either
            self.counts["held"] += 1
            await self._hold()
            return False
        if fault == "malformed":
            response_body = response_body[: max(1, len(response_body) // 2)]
        _write(writer, status, response_body)
        await writer.drain()
        return True

    async def _hold(self) -> None:
        deadline = asyncio.get_running_loop().time() + MAX_HOLD_S
        while self.hang and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    async def _forward(self, method, path, headers, body) -> tuple[int, bytes]:
        keep = {k: v for k, v in headers.items() if k in ("content-type", "authorization", "accept")}
        async with self._session.request(method, self.upstream + path, data=body, headers=keep) as response:
            return response.status, await response.read()


async def _read_request(reader: asyncio.StreamReader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise ConnectionError("request body too large")
    body = await reader.readexactly(length) if length else b""
    return method, path, headers, body


def _write(writer: asyncio.StreamWriter, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
    reason = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "Status")
    head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json", f"content-length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (extra or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

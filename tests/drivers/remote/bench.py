"""Speed of the remote protocol: codec micro-benchmarks and round trips over a UNIX socket.

    python -m tests.drivers.remote.bench            # everything, ~20 s
    python -m tests.drivers.remote.bench --quick    # fewer iterations

Prints µs per operation for the XDR codec (domain-info reply and arguments,
packet header) and round trips per second of ``domain_get_info`` between a
RemoteClient and a RemoteServer in another process with a trivial handler:
one client calling back to back, then several client processes at once (the
server's capacity). Not part of the test run; tests never assert timings.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
import timeit
from typing import Any

from virtkit.drivers.remote import protocol
from virtkit.drivers.remote.client import RemoteClient
from virtkit.drivers.remote.server import ClientConnection, RemoteServer

DOM = {"name": "fv0", "uuid": bytes(range(16)), "id": 1}
INFO = {"state": 1, "max_mem": 1 << 20, "memory": 1 << 19, "nr_virt_cpu": 2,
        "cpu_time": 12_500_000_000}


class TrivialHandler:
    """Answers domain_get_info with a constant."""

    def domain_get_info(self, conn: ClientConnection, args: dict[str, Any]) -> dict[str, Any]:
        return INFO


class AsyncTrivialHandler:
    """The same, as a coroutine (run as a task per call)."""

    async def domain_get_info(self, conn: ClientConnection, args: dict[str, Any]
                              ) -> dict[str, Any]:
        return INFO


def micro(number: int) -> None:
    proc = protocol.BY_NAME["domain_get_info"]
    args = {"dom": DOM}
    args_wire = proc.args.encode(args)
    ret_wire = proc.ret.encode(INFO)
    body = protocol.encode_packet(protocol.REMOTE_PROGRAM, 1, 16, 1, 7, 0, ret_wire)[4:]
    cases = [
        ("domain_get_info ret: encode", lambda: proc.ret.encode(INFO)),
        ("domain_get_info ret: decode", lambda: proc.ret.decode(ret_wire)),
        ("domain_get_info args: encode", lambda: proc.args.encode(args)),
        ("domain_get_info args: decode", lambda: proc.args.decode(args_wire)),
        ("packet header: encode (with length)",
         lambda: protocol.encode_packet(protocol.REMOTE_PROGRAM, 1, 16, 1, 7, 0, ret_wire)),
        ("packet header: decode", lambda: protocol.decode_header(body)),
    ]
    for label, fn in cases:
        best = min(timeit.repeat(fn, number=number, repeat=5)) / number
        print(f"  {label:40s} {best * 1e6:6.2f} µs")


def _serve(path: str, use_async: bool, ready: Any) -> None:
    async def main() -> None:
        handler = AsyncTrivialHandler() if use_async else TrivialHandler()
        server = RemoteServer(handler)
        await server.listen_unix(path)
        ready.set()
        await server.serve_forever()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


def _client(path: str, calls: int, start: Any, results: Any) -> None:
    client = RemoteClient.connect_unix(path)
    client.open("test:///default")
    args = {"dom": DOM}
    for _ in range(100):
        client.call("domain_get_info", args)
    start.wait()
    t0 = time.perf_counter()
    for _ in range(calls):
        client.call("domain_get_info", args)
    results.put((calls, time.perf_counter() - t0))
    client.close()


def round_trips(calls: int, clients: int, use_async: bool) -> float:
    ctx = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.sock")
        ready = ctx.Event()
        server = ctx.Process(target=_serve, args=(path, use_async, ready), daemon=True)
        server.start()
        try:
            if not ready.wait(10):
                raise RuntimeError("server did not start")
            start = ctx.Event()
            results = ctx.Queue()
            procs = [ctx.Process(target=_client, args=(path, calls, start, results))
                     for _ in range(clients)]
            for p in procs:
                p.start()
            time.sleep(0.5)
            t0 = time.perf_counter()
            start.set()
            done = [results.get(timeout=120) for _ in procs]
            wall = time.perf_counter() - t0
            for p in procs:
                p.join()
        finally:
            server.terminate()
            server.join()
    total = sum(int(n) for n, _ in done)
    return total / wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args(argv)
    number = 20_000 if opts.quick else 200_000
    calls = 5_000 if opts.quick else 30_000
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print("XDR codec (best of 5):")
    micro(number)
    print("domain_get_info round trips over a UNIX socket (server in another process):")
    for use_async in (False, True):
        kind = "async" if use_async else "sync"
        for clients in (1, 4):
            rate = round_trips(calls, clients, use_async)
            print(f"  {kind:5s} handler, {clients} client process(es): {rate:8,.0f} calls/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The daemon's stand-in inside the test namespace: a process that runs virtkit.net for the tests.

Started by the ``agent`` fixture as ``ip netns exec NS python3 -m tests.net.agent FD``
(the whole process lives in the namespace, so nothing it does can touch the
host's network). It answers requests on the socket ``FD``, pickled by
:mod:`multiprocessing.connection`:

- ``("open", None, args, kwargs)``: ``NetworkManager.open(*args, **kwargs)``, kept as
  the current manager (the previous one, if any, is closed without stopping networks);
- ``("method", NAME, args, kwargs)``: ``manager.NAME(*args, **kwargs)``;
- ``("attr", NAME, (), {})``: ``manager.NAME``;
- ``("call", "module:function", args, kwargs)``: any importable function (the
  helpers in :mod:`tests.net.scenarios`, or virtkit.net's own functions);
- ``("shutdown", None, (), {})``: destroy every network, close, exit.

Each answer is ``("ok", result)`` or ``("err", exception, traceback text)``.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s agent %(name)s %(levelname)s %(message)s")
    from virtkit.net.manager import NetworkManager

    conn = Connection(int(sys.argv[1]))
    manager: NetworkManager | None = None
    while True:
        try:
            kind, target, args, kwargs = conn.recv()
        except EOFError:
            break
        try:
            result: Any = None
            if kind == "open":
                if manager is not None:
                    manager.close()
                manager = NetworkManager.open(*args, **kwargs)
            elif kind == "method":
                if manager is None:
                    raise RuntimeError("no manager is open in the agent")
                result = getattr(manager, target)(*args, **kwargs)
            elif kind == "attr":
                result = getattr(manager, target)
            elif kind == "call":
                module, _, name = target.partition(":")
                result = getattr(importlib.import_module(module), name)(*args, **kwargs)
            elif kind == "shutdown":
                if manager is not None:
                    manager.close(stop_networks=True)
                conn.send(("ok", None))
                return 0
            else:
                raise ValueError(f"unknown request {kind!r}")
            conn.send(("ok", result))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the test
            text = traceback.format_exc()
            try:
                conn.send(("err", exc, text))
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                conn.send(("err", RuntimeError(f"{type(exc).__name__}: {exc}"), text))
    if manager is not None:
        manager.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

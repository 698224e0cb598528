"""S-expressions as xend speaks them (its ``sxp`` format), parsed in Rust.

:func:`loads` parses bytes or text into an :class:`SExpr` tree. Nodes are
atoms or lists; look values up by path, where the first component names the
node itself::

    dom = loads(reply)
    dom.get_str("domain/name")             # 'fvtest', or None when absent
    dom.get_int("domain/memory")           # 420 (never a sentinel 0)
    dom.get_str("domain/image/linux/kernel")
    for vbd in dom.find_all("domain/device/vbd"):
        vbd.get_str("vbd/uname")

:func:`dumps` serializes an :class:`SExpr` or a plain tree of ``str``/``int``
atoms in tuples or lists (``("vm", ("name", "x"), ("memory", 512))``), on one
line or, with ``indent``, in xend's indented layout. ``loads(dumps(t))``
gives back ``t`` (as :meth:`SExpr.to_tree`).

Malformed text raises :class:`virtkit.errors.SExprSyntaxError` with the byte
``offset`` and what was ``expected``; a value of the wrong type for
``get_int``/``get_float`` raises :class:`virtkit.errors.SExprValueError`.
Parsing is linear in the input, never recursive, and releases the GIL for
large inputs.

Run ``python -m virtkit.sexpr FILE`` to pretty-print a file.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from virtkit._core import SExpr, sexpr_dumps, sexpr_parse
from virtkit.errors import VirtError

__all__ = ["SExpr", "loads", "dumps", "join_continuations", "main"]

#: ``loads(data, *, lenient=False) -> SExpr``
loads = sexpr_parse
#: ``dumps(tree, *, indent=None) -> str``
dumps = sexpr_dumps


def join_continuations(data: bytes) -> bytes:
    """Remove backslash-newline pairs (line wrapping used by libvirt's test files)."""
    return data.replace(b"\\\n", b"")


def main(argv: Sequence[str] | None = None) -> int:
    """Pretty-print S-expression files, or print values looked up by path."""
    import argparse  # here: the library's users (the Xen driver) never need it

    parser = argparse.ArgumentParser(
        prog="python -m virtkit.sexpr",
        description="Pretty-print xend S-expressions, or read values from them by path.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="file to read ('-' for stdin)")
    parser.add_argument("--get", action="append", default=[], metavar="PATH",
                        help="print the value at PATH (e.g. domain/memory) instead")
    parser.add_argument("--indent", type=int, default=4, help="spaces per level (default 4)")
    parser.add_argument("--join-continuations", action="store_true",
                        help="remove backslash-newline pairs first (libvirt test files)")
    parser.add_argument("--lenient", action="store_true",
                        help="accept what libvirt's parser did: close lists left open "
                        "at the end, ignore text after the first expression")
    args = parser.parse_args(argv)
    status = 0
    for name in args.files:
        try:
            if name == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(name, "rb") as f:
                    data = f.read()
            if args.join_continuations:
                data = join_continuations(data)
            tree = loads(data, lenient=args.lenient)
            if args.get:
                for path in args.get:
                    value = tree.get(path)
                    shown = "(absent)" if value is None else (
                        value.text if value.is_atom else tree.get_str(path)
                        if len(value) <= 2 and (len(value) < 2 or value[1].is_atom)
                        else value.dumps())
                    print(f"{path}: {shown}")
            else:
                sys.stdout.write(tree.dumps(indent=args.indent))
        except OSError as e:
            print(f"error: {name}: {e.strerror}", file=sys.stderr)
            status = 1
        except VirtError as e:
            print(f"error: {name}: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

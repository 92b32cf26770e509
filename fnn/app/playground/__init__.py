"""fnn playground: TensorFlow Playground in the browser, trained by fnn.

``fnn playground [--port N] [--host H] [--no-browser]`` serves the page (server.py), whose
tabs each drive a :class:`~fnn.app.playground.session.Session` over a WebSocket; every frame
is one call of fnn's compiled epoch engine. See the README's "Playground" section.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main", "add_arguments", "DEFAULT_PORT"]

DEFAULT_PORT = 8765


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``playground`` subcommand's options."""
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to serve on (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")


def main(args: argparse.Namespace) -> int:
    """Serve the playground until Ctrl-C; prints the URL, opens the browser unless
    ``args.no_browser``. Returns the exit status (0 after Ctrl-C)."""
    import threading
    import webbrowser

    import uvicorn

    from fnn.app.playground.server import app

    if not 0 <= args.port <= 65535:
        raise ValueError(f"fnn playground: --port must be in [0, 65535], got {args.port}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"fnn playground: warning: serving on {args.host}, reachable from other "
              f"machines; the playground has no authentication", file=sys.stderr)
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}/"
    print(f"fnn playground: serving on {url}  (Ctrl-C stops)", flush=True)
    if not args.no_browser:
        threading.Timer(1.0, webbrowser.open, (url,)).start()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    print("fnn playground: stopped", flush=True)
    return 0

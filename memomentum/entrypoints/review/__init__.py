"""``memomentum review``: look at a run's verdicts in the browser, decide, export the cleaned
data (docs/review.md).

:func:`serve` starts the local web application (:mod:`.server`, Starlette and uvicorn from
the ``review`` extra, imported only here); :func:`export` writes the run's data with the
decisions of ``RUN_DIR/review.csv`` applied (:mod:`.export`), without the web framework.
"""

from __future__ import annotations

import secrets
import signal
import socket
import sys
import webbrowser
from pathlib import Path

from ...base.errors import InputError
from .export import export

__all__ = ["export", "serve"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def import_web():
    """Starlette and uvicorn, or one sentence saying how to install them."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as e:
        raise InputError(
            f'memomentum review needs {e.name}, which is not installed; pip install "memomentum[review]"'
        ) from None
    return uvicorn


def serve(run_dirs, *, host: str = "127.0.0.1", port: int = 0, open_browser: bool = True) -> int:
    """Serve the review of ``run_dirs`` on ``host:port`` (0: a free port) until stopped
    (Ctrl-C); print the URL with its token; open the browser unless told not to."""
    uvicorn = import_web()
    from .server import create_app
    from .session import Review

    review = Review([Path(d) for d in run_dirs])
    try:
        sock = _bound_socket(host, port)
        port = sock.getsockname()[1]
        token = secrets.token_urlsafe(24)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"http://{_url_host(shown)}:{port}/?token={token}"
        if host not in LOOPBACK:
            print(
                f"memomentum: warning: --host {host} lets other machines reach this review; anyone with the URL's "
                f"token can read the run's data and change its decisions",
                file=sys.stderr,
            )
        hosts = None if host in ("0.0.0.0", "::") else {f"{_url_host(h)}:{port}" for h in {*LOOPBACK, host}}
        app = create_app(review, token=token, hosts=hosts)
        print(
            f"memomentum review: {len(review.ex):,} examples of {review.run_dir} "
            f"({review.decisions.counts()['reviewed']:,} decided) at {url}",
            flush=True,
        )
        print(f"memomentum review: every decision is saved in {review.decisions.path}; stop with Ctrl-C", flush=True)
        if open_browser:
            webbrowser.open(url)
        _run_until_stopped(uvicorn, app, sock)
    finally:
        review.close()
    print(f"memomentum review: stopped; every decision is in {review.decisions.path}", flush=True)
    return 0


class _Stopped(Exception):
    pass


def _stopped(signum, frame):
    raise _Stopped


def _run_until_stopped(uvicorn, app, sock) -> None:
    """Serve until Ctrl-C or SIGTERM. uvicorn shuts down gracefully, then raises the signal
    again: here it ends the serving, so that the caller releases the lock."""
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)).run(sockets=[sock])
    except (_Stopped, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise InputError(
            f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port (0 picks a free one)"
        ) from None
    sock.listen(128)
    return sock

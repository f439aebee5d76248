"""The review's web application (Starlette, served by uvicorn): the page, its JSON API and
the thumbnails.

Safe by default: every request must carry the session's random token (the ``token`` query
parameter of the URL printed at start, then a cookie the page sets: HttpOnly, SameSite
Strict) and a Host header naming the address the server listens on (so that another web
page, even through DNS rebinding, can neither read the data nor post decisions); anything
else gets 403. Only the run's own examples are served, by their index; every other path,
``..`` included, is 404. Decisions must be posted as JSON (a form of another site cannot).
"""

from __future__ import annotations

import hmac
from importlib import resources
from urllib.parse import parse_qs

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ...base.errors import InputError
from .examples import MAX_PAGE, SORTS, STATES, Query

COOKIE = "memomentum_review"
STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
DECIDE = ("accept", "keep", "relabel", "exclude", "clear")


class Guard:
    """ASGI middleware: the Host header and the token, before anything else runs."""

    def __init__(self, app, *, token: str, hosts: set[str] | None):
        self.app, self.token, self.hosts = app, token, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.hosts is not None and headers.get("host", "").lower() not in self.hosts:
            return await PlainTextResponse("forbidden: unknown Host header\n", 403)(scope, receive, send)
        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        cookie = _cookie(headers.get("cookie", ""), cookie_name(scope))
        if not any(hmac.compare_digest(t.encode(), self.token.encode()) for t in (given, cookie) if t):
            return await PlainTextResponse(
                "forbidden: this page needs the token of the URL that memomentum review printed\n", 403
            )(scope, receive, send)
        await self.app(scope, receive, send)


def cookie_name(scope) -> str:
    """One cookie per port: browsers share cookies between the ports of a host, and two
    reviews may run at once."""
    server = scope.get("server") or ("", 0)
    return f"{COOKIE}_{server[1]}"


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def create_app(review, *, token: str, hosts: set[str] | None):
    """The application for ``review`` (:class:`memomentum.entrypoints.review.session.Review`).
    ``hosts``: the Host headers allowed (None: any, for ``--host 0.0.0.0``)."""

    async def page(request: Request):
        html = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
        response = Response(html, media_type="text/html; charset=utf-8", headers=_no_store())
        response.set_cookie(cookie_name(request.scope), token, httponly=True, samesite="strict", path="/")
        return response

    async def static(request: Request):
        name = request.path_params["name"]
        if name not in STATIC:
            return _not_found()
        text = resources.files(__package__).joinpath(f"static/{name}").read_text(encoding="utf-8")
        return Response(text, media_type=STATIC[name], headers=_no_store())

    async def meta(request: Request):
        return JSONResponse(review.meta())

    async def examples(request: Request):
        try:
            q = _query(request.query_params, len(review.ex.classes))
        except ValueError as e:
            return JSONResponse({"error": str(e)}, 400)
        return JSONResponse(await run_in_threadpool(review.page, q))

    async def thumbnail(request: Request):
        pos = _position(review, request.path_params["index"])
        if pos is None:
            return _not_found()
        data = await run_in_threadpool(review.view.thumbnail, pos)
        if data is None:
            return _not_found()
        kind = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
        return Response(data, media_type=kind, headers={"Cache-Control": "private, max-age=3600"})

    async def decide(request: Request):
        return await _posted(request, review.decide)

    async def export(request: Request):
        return await _posted(request, lambda body: {"message": review.export(str(body.get("out") or ""))})

    routes = [
        Route("/", page),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/static/{name}", static),
        Route("/api/meta", meta),
        Route("/api/examples", examples),
        Route("/thumb/{index}", thumbnail),
        Route("/api/decide", decide, methods=["POST"]),
        Route("/api/export", export, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: lambda r, e: _not_found()})
    return Guard(app, token=token, hosts=hosts)


def _no_store() -> dict:
    return {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'",
    }


def _not_found() -> Response:
    return PlainTextResponse("not found\n", 404)


def _position(review, text: str) -> int | None:
    """The position of the example whose index is ``text``, or None (not a number, not the run's)."""
    if not text.isdigit():
        return None
    try:
        return int(review.ex.positions([int(text)])[0])
    except InputError:
        return None


async def _posted(request: Request, action) -> Response:
    """``action`` on the posted JSON object, in a worker thread (it writes files); a refusal as 400."""
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
    try:
        return JSONResponse(await run_in_threadpool(action, body))
    except InputError as e:
        return JSONResponse({"error": str(e)}, 400)


async def _json_body(request: Request):
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return JSONResponse({"error": "decisions are posted as application/json"}, 415)
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "the body is not JSON"}, 400)
    return body if isinstance(body, dict) else JSONResponse({"error": "the body is not a JSON object"}, 400)


def _query(params, k: int) -> Query:
    def klass(name):
        value = params.get(name, "")
        if value == "":
            return None
        if not value.isdigit() or int(value) >= k:
            raise ValueError(f"{name} must be a class number below {k}")
        return int(value)

    sort, state = params.get("sort", "rank"), params.get("state", "any")
    if sort not in SORTS or state not in STATES:
        raise ValueError(f"sort must be one of {', '.join(SORTS)} and state one of {', '.join(STATES)}")
    offset, limit = params.get("offset", "0"), params.get("limit", "48")
    if not (offset.isdigit() and limit.isdigit()) or not 0 < int(limit) <= MAX_PAGE:
        raise ValueError(f"offset must be a number and limit a number from 1 to {MAX_PAGE}")
    return Query(
        suspects=params.get("suspects") == "1",
        given=klass("given"),
        predicted=klass("predicted"),
        state=state,
        search=params.get("q", "")[:200],
        sort=sort,
        offset=int(offset),
        limit=int(limit),
    )


def positions_of(review, indices) -> np.ndarray:
    if not isinstance(indices, list) or not indices or not all(isinstance(i, int) for i in indices):
        raise InputError("indices must be a non-empty list of example indices")
    return review.ex.positions(indices)

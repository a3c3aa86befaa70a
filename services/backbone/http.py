"""What every HTTP service shares: its FastAPI app with a health check, bounds on request
bodies kept before the body is read (``body_limit``; ``caller_gate`` where a route's bearer
check would come only after the parse), and validation errors answered as 422 naming the
field (``loc``) and the rule (``type``), never echoing the input, which may be an NHS
number or a whole body about a child."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response, params
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BeforeValidator, StringConstraints
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.backbone.body_limit import MAX_JSON_DEPTH, BodyLimit
from services.backbone.caller_gate import CallerGate
from services.backbone.identifiers import (
    nhs_number_rule,
    normalise_nhs_number,
    normalise_upn,
    upn_rule,
)
from services.backbone.openapi_responses import document_answers

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def _checked(
    rule: Callable[[str], tuple[str, str] | None], normalise: Callable[[str], str]
) -> Callable[[str], str]:
    """A validator: the value normalised, or a 422 naming the rule broken (never the value)."""

    def check(value: str) -> str:
        broken = rule(value)
        if broken:
            raise PydanticCustomError(*broken)
        return normalise(value)

    return check


# Generous bounds (spaces and a check letter fit many times over) before the rule is checked.
NhsNumber = Annotated[
    str,
    StringConstraints(max_length=32),
    AfterValidator(_checked(nhs_number_rule, normalise_nhs_number)),
]
"""An NHS number in a request body: 10 digits whose check digit matches, spaces removed."""

Upn = Annotated[
    str, StringConstraints(max_length=32), AfterValidator(_checked(upn_rule, normalise_upn))
]
"""A Unique Pupil Number in a request body: check letter and 12 characters, check letter
matching (modulus 23); upper case, spaces removed."""


def _json_number(value: object) -> object:
    """Only a JSON number is a number in a request body: pydantic's lax mode would read
    true as 1 and "12" as 12, where the OpenAPI document says number (a fuzzer's
    schema-violating request was accepted so)."""
    if isinstance(value, bool | str):
        raise PydanticCustomError("number_type", "Input should be a JSON number")
    return value


WholeNumber = Annotated[int, BeforeValidator(_json_number)]
"""An integer in a JSON request body: 12, or 12.0 (JSON Schema's integer too), never true,
false or text. Query parameters and forms, which are text, keep plain ``int``."""

Number = Annotated[float, BeforeValidator(_json_number)]
"""A number in a JSON request body: never true, false or text."""


def _json_boolean(value: object) -> object:
    """Only true or false is a boolean in a request body: pydantic's lax mode would read 1,
    "yes" and "off" as one."""
    if not isinstance(value, bool):
        raise PydanticCustomError("bool_type", "Input should be true or false")
    return value


Flag = Annotated[bool, BeforeValidator(_json_boolean)]
"""A boolean in a JSON request body: true or false, nothing else."""


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _iso_text(value: object) -> object:
    """Only ISO 8601 text is a date or a time here (a time part after a date is the date's
    parser's to judge, as systems that write dates as midnights send them): pydantic would
    read a number, or text of one, as Unix seconds (0 as 1 January 1970)."""
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise PydanticCustomError(
        "iso_date", "ISO 8601 text is required: yyyy-mm-dd, and a time if any"
    )


IsoDate = Annotated[date, BeforeValidator(_iso_text)]
"""A date in a request body, query or form: ISO 8601 text (or a date), never a number."""

IsoInstant = Annotated[datetime, BeforeValidator(_iso_text)]
"""A time in a request body, query or form: ISO 8601 text (or a datetime), never a number."""


def bearer_holder(authorization: str | None, lookup: Callable[[str], str | None]) -> str:
    """Who the ``Authorization: Bearer`` token belongs to, or 401."""
    scheme, _, token = (authorization or "").partition(" ")
    holder = lookup(token) if scheme.lower() == "bearer" and token else None
    if holder is None:
        raise HTTPException(
            401, detail="a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return holder


async def one_value_per_query_parameter(request: Request) -> None:
    """Refuse (422) a query parameter given more than once: every one here is a single
    value, and FastAPI would take the last, answering a request other than the one sent.
    (``async``: FastAPI runs a plain ``def`` dependency in a worker thread, a hop for every
    request of every service.)"""
    counted = Counter(name for name, _ in request.query_params.multi_items())
    repeated = sorted(name for name, times in counted.items() if times > 1)
    if repeated:
        raise RequestValidationError(
            [
                {"loc": ("query", name), "msg": "given more than once", "type": "query.repeated"}
                for name in repeated
            ]
        )


def create_service_app(
    *,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    health: Callable[[], dict[str, Any]] = lambda: {},
    dependencies: Sequence[params.Depends] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_json_depth: int = MAX_JSON_DEPTH,
    body_callers: Callable[[str], Awaitable[bool]] | None = None,
    open_body_prefixes: tuple[str, ...] = (),
) -> FastAPI:
    """The service's app. Its request bodies are bounded to ``max_body_bytes`` and JSON
    nesting to ``max_json_depth`` as they arrive; with ``body_callers`` (whether a bearer
    token is one of the service's callers'), a request whose token is not is refused 401
    before its body is read, except under ``open_body_prefixes`` (pages whose forms check
    their own caller, by session, before reading a field). Its OpenAPI document states
    every answer a route can give (``openapi_responses``)."""
    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(one_value_per_query_parameter), *(dependencies or ())],
        # FastAPI's own spans would carry url.path and url.query, where an identifier can
        # sit: requests are traced by http_telemetry.HttpTelemetry, with the route's
        # template only. Its logs would carry exception messages.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    @app.exception_handler(RequestValidationError)
    async def _malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(StarletteHTTPException)
    async def _refused(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers a JSON body it cannot decode (not UTF-8, nested past the parser's
        # limit, a number of over 4300 digits) 400 "There was an error parsing the body",
        # while a syntax error is 422 json_invalid: one answer for both.
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            problem = {"loc": ["body"], "msg": "the body is not valid JSON", "type": "json_invalid"}
            return JSONResponse(status_code=422, content={"detail": [problem]})
        return await http_exception_handler(request, exc)

    @app.get("/healthz", tags=["operations"], summary="Liveness of this service")
    async def healthz() -> dict[str, Any]:
        # Off the event loop: a service's health may read its database.
        return {"status": "ok", **await asyncio.to_thread(health)}

    # Added first, so innermost: a gate added later (the caller's key) runs before it.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, max_json_depth=max_json_depth)
    if body_callers is not None:
        app.add_middleware(CallerGate, known=body_callers, open_prefixes=open_body_prefixes)
    document_answers(app, max_body_bytes=max_body_bytes, gated=body_callers is not None)
    return app


__all__ = ["NhsNumber", "Upn", "bearer_holder", "create_service_app"]

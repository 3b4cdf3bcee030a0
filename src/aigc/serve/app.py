"""`aigc serve`: trained runs behind an HTTP API and a web page (FastAPI), a thin shell over `aigc.load`.

    GET  /                          the page (static HTML/JS, nothing fetched from outside)
    GET  /health                    {"status": "ok", "models": N}
    GET  /models                    each model: modality, family, labels, options with bounds, eval figures
    POST /models/{name}/samples     PNG, JSON or text by `format` or the Accept header
    GET  /models/{name}/report      the run's report.md and its figures
    GET  /models/{name}/files/{f}   a figure of the run (curves.png, samples.png, ...)

Every error is JSON `{"error": "one line"}`; a user's mistake is a 4xx, never a traceback.
"""
from __future__ import annotations

import hmac
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ConfigError, UserError, unknown
from ..models.capabilities import Conditional, is_conditional
from ..run import Loaded, load
from .slots import (
    Busy,
    Gone,
    ModelSlots,
    QueueTimeout,
    SampleTimeout,
    install_deadline_hook,
    remove_deadline_hook,
)

log = logging.getLogger("aigc.serve")

MAX_N = 64                 # samples one request may ask for
MAX_BODY_BYTES = 16_384    # a request body
MAX_OUTPUT_BYTES = 32 << 20  # an answer
MAX_PROMPT = 200           # characters of a text prompt
MAX_TOKENS = 1000          # new tokens a text sample
MAX_STEPS = 1000           # sampler steps
MAX_GUIDANCE = 50.0
MAX_TEMPERATURE = 10.0
STATIC = Path(__file__).with_name("static")
PAGE, SCRIPT = STATIC / "index.html", STATIC / "app.js"
PUBLIC = ("/", "/app.js")  # the page itself: served without the token (a browser cannot send one to open it)
FIGURE = re.compile(r"[\w.-]{1,100}\.png")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
FORMATS = ("png", "json", "txt", "wav", "gif")  # answer formats the service knows (a modality offers some of them)


class SampleRequest(BaseModel):
    """What to draw. Options a model's family lacks are refused (422) with the ones it has."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(4, ge=1, le=MAX_N, description="how many samples")
    seed: int | None = Field(None, ge=0, le=2**53 - 1,
                             description="same seed and options, same samples; left out: one is drawn and "
                                         "returned (at most 2^53 - 1, the integers a browser holds exactly)")
    format: Literal[FORMATS] | None = Field(
        None, description="answer format; left out: from the Accept header, else the modality's default")
    label: str | int | None = Field(None, description="conditional models: one class, by name or index")
    labels: list[str | int] | None = Field(None, min_length=1, max_length=MAX_N,
                                           description="conditional models: classes cycled over the samples")
    ema: bool | None = Field(None, description="GAN/diffusion/flow: sample the moving average (default true)")
    steps: int | None = Field(None, ge=1, le=MAX_STEPS, description="diffusion/flow: sampler steps")
    sampler: str | None = Field(None, max_length=32, description="diffusion: ddim, dpm++2m; flow: euler, heun, midpoint")
    guidance: float | None = Field(None, ge=0, le=MAX_GUIDANCE,
                                   description="conditional diffusion/flow: classifier-free guidance weight")
    temperature: float | None = Field(None, ge=0, le=MAX_TEMPERATURE, description="text, music: 0 greedy, <1 sharper")
    top_k: int | None = Field(None, ge=1, le=100_000, description="text, music: only the k likeliest tokens")
    top_p: float | None = Field(None, gt=0, le=1, description="text, music: only the likeliest tokens holding this mass")
    prompt: str | None = Field(None, max_length=MAX_PROMPT,
                               description="text: every sample starts with this; conditional models: free words "
                                           "matched to the classes ('a + b' mixes them), the match in prompt_match")
    max_len: int | None = Field(None, ge=1, le=MAX_TOKENS, description="text: at most this many new tokens")
    drop_copies: bool | None = Field(None, description="text: leave out samples found verbatim in training")
    bars: int | None = Field(None, ge=1, le=64, description="music: each piece's length in bars, prompt bars included")
    prompt_bars: int | None = Field(None, ge=0, le=4, description="music: start from the first bars of a test piece")
    max_copy_bars: int | None = Field(None, ge=0, le=64,
                                      description="music: draw again pieces repeating more bars of a training piece")
    key: str | None = Field(None, max_length=16, description="music: the key, e.g. D or F# minor (default C major / "
                                                             "A minor)")

    def options(self) -> dict[str, Any]:
        """The family options this request sets (fields left out keep the family's defaults)."""
        given = self.model_dump(exclude_none=True, exclude={"n", "seed", "format"})
        if "label" in given:
            if "labels" in given:
                raise ConfigError("both label and labels given", "give one of them")
            given["labels"] = [given.pop("label")]
        return given


class NotFound(UserError):
    """A model or file the service does not have (404)."""


class ErrorBody(BaseModel):
    error: str


class ModelInfo(BaseModel):
    name: str
    max_n: int
    modality: str
    family: str
    labels: list[str]
    formats: list[str]
    options: dict[str, dict[str, Any]]
    eval: dict[str, Any] | None
    checkpoint: str


class Health(BaseModel):
    status: str
    models: int


class Report(BaseModel):
    name: str
    report: str | None
    figures: list[str]


def printable(text: str) -> str:
    """Control characters (a newline, an escape) shown as \\xNN: an error or log line stays one line."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": printable(message)}, status_code=status, headers=headers)


ERRORS = {code: {"model": ErrorBody, "description": text} for code, text in {
    400: "a body that cannot be read (not UTF-8 JSON)", 401: "missing or wrong bearer token", 404: "no such model or file", 406: "no format the Accept header allows",
    413: "request or answer too large", 422: "a bad value or an option the model lacks",
    429: "the model's queue is full (Retry-After)", 503: "the request ran past its time limit"}.items()}


@dataclass
class Served:
    name: str
    loaded: Loaded
    slots: ModelSlots
    info: dict[str, Any]


def option_specs(loaded: Loaded) -> dict[str, dict[str, Any]]:
    """The family's sample options as a form needs them: type, default, bounds, choices."""
    hints = loaded.model.sample_hints()
    schema = SampleRequest.model_json_schema()["properties"]
    specs: dict[str, dict[str, Any]] = {}
    if is_conditional(loaded.model) and not loaded.prompt_is_prefix:  # words matched to the classes: first
        specs["prompt"] = {"type": "string", "max_length": MAX_PROMPT, "default": None, "words": True,
                           "help": "say what to make in your own words: matched to the classes "
                                   "(scores shown); 'a + b' mixes two; words or a label, not both"}
    for f in fields(loaded.model.SampleOptions):
        spec: dict[str, Any] = {}
        field = "label" if f.name == "labels" else f.name
        prop = schema.get(field)
        if prop is None:
            continue  # a plug-in family's own option: reachable through the Python API and the CLI
        kinds = [a.get("type") for a in prop.get("anyOf", [prop])]
        spec["type"] = next((k for k in kinds if k in ("integer", "number", "boolean")), "string")
        for key, name in (("minimum", "min"), ("maximum", "max"), ("exclusiveMinimum", "above"),
                          ("maxLength", "max_length")):
            for a in prop.get("anyOf", [prop]):
                if key in a:
                    spec[name] = a[key]
        if f.name == "labels":
            if not (isinstance(loaded.model, Conditional) and loaded.model.num_classes):
                continue  # an unconditional model of labelled data: no label to choose
            spec["type"], spec["choices"] = "string", list(loaded.class_names)  # by name (an index works too)
        default = hints.get(f.name, {}).get("default", f.default if f.default is not None else None)
        spec["default"] = default if isinstance(default, (int, float, str, bool)) or default is None else None
        if "choices" in hints.get(f.name, {}):
            spec["choices"] = hints[f.name]["choices"]
        spec["help"] = prop.get("description", "")
        specs[field] = spec
    return specs


def eval_figures(run_dir: Path) -> dict[str, Any] | None:
    """Headline figures of the run's eval.json (`aigc eval RUN`), if it has one."""
    path = run_dir / "eval.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() and path.stat().st_size < 8 << 20 else None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("sections"), list):
        return None
    values = {str(k)[:40]: v for s in data["sections"] if isinstance(s, dict) and isinstance(s.get("values"), dict)
              for k, v in s["values"].items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    n, against = data.get("n"), data.get("against")
    return {"n": n if isinstance(n, int) and not isinstance(n, bool) else None,
            "against": against[:200] if isinstance(against, str) else None, "values": values}


def describe(name: str, loaded: Loaded) -> dict[str, Any]:
    from ..plugins import MODALITIES

    modality = MODALITIES.get(loaded.modality)
    if not modality.web_formats or any(f not in FORMATS for f in modality.web_formats):
        raise ConfigError(f"model {name}: the {loaded.modality} modality names no web format the service knows",
                          "its author must set web_formats (e.g. png, json, txt)")
    return {"name": name, "max_n": MAX_N, "modality": loaded.modality, "family": str(loaded.config.model["name"]),
            "labels": loaded.class_names, "formats": list(modality.web_formats),
            "options": option_specs(loaded), "eval": eval_figures(loaded.run_dir),
            "checkpoint": loaded.checkpoint.name}


def model_names(specs: list[str]) -> dict[str, Path]:
    """`PATH` or `NAME=PATH` -> {name: path}; a name is the folder's unless given."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
        path_ = Path(path)
        name = name or path_.resolve().name
        if not re.fullmatch(r"[\w.-]{1,64}", name):
            raise ConfigError(f"model name '{name}' has characters a URL path would mangle",
                              "serve it as NAME=PATH with letters, digits, '.', '-' or '_'")
        if name in out:
            raise ConfigError(f"two runs are named '{name}'", "serve one of them as OTHER_NAME=PATH")
        out[name] = path_
    if not out:
        raise ConfigError("no run to serve", "give one or more run directories written by `aigc train`")
    return out


def load_models(specs: list[str], checkpoint: str = "latest", device: str = "cpu") -> dict[str, Loaded]:
    return {name: load(path, checkpoint, device=device) for name, path in model_names(specs).items()}


def create_app(models: Mapping[str, str | Path | Loaded], *, token: str | None = None, workers_per_model: int = 1,
               queue: int = 16, time_limit: float = 60.0, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The service for `models` ({name: run dir or a Loaded}); run dirs are loaded in the app's lifespan.

    `allowed_hosts`: Host headers answered (others get 400), so a web page elsewhere cannot reach a
    loopback server through a DNS name of its own (`aigc serve` passes the loopback names when it
    listens on loopback); None answers any."""
    if token is not None and not token.strip():
        raise ConfigError("the token is empty", "give a secret, or leave the token out")
    if not 1 <= workers_per_model <= 64:
        raise ConfigError(f"--workers-per-model is {workers_per_model}", "use 1 to 64")
    if not 0 <= queue <= 10_000:
        raise ConfigError(f"--queue is {queue}", "use 0 to 10,000")
    if not 0 < time_limit <= 3600:
        raise ConfigError(f"--time-limit is {time_limit}", "use more than 0 and at most 3,600 seconds")
    served: dict[str, Served] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        install_deadline_hook()
        try:
            for name, item in models.items():
                loaded = item if isinstance(item, Loaded) else load(item)
                served[name] = Served(name, loaded, ModelSlots(name, workers_per_model, queue, time_limit),
                                      describe(name, loaded))
            log.info("serving %s", ", ".join(f"{n} ({s.info['family']}, {s.info['checkpoint']})"
                                              for n, s in served.items()))
            yield
        finally:
            for s in served.values():
                s.slots.close()
            served.clear()
            remove_deadline_hook()

    app = FastAPI(title="aigc", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Samples from trained aigc runs. Errors are JSON with one line.")
    app.state.served = served

    def get(name: str) -> Served:
        if name not in served:
            raise unknown("model", name, served, NotFound)
        return served[name]

    # ------------------------------------------------------------ errors, one line each

    @app.exception_handler(UserError)
    async def user_error(request: Request, e: UserError) -> JSONResponse:
        return error(404 if isinstance(e, NotFound) else 422, str(e))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or "body"
        more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        return error(422, f"{where}: {first.get('msg', 'invalid')}{more}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return error(e.status_code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s: %s", request.method, printable(request.scope["path"]),
                  type(e).__name__, printable(str(e)))
        return error(500, f"internal error ({type(e).__name__}); the server log has the details")

    # ------------------------------------------------------------ endpoints

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE, media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})

    @app.get("/app.js", include_in_schema=False)
    async def script() -> FileResponse:
        return FileResponse(SCRIPT, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-store"})

    @app.get("/health", response_model=Health, responses={401: ERRORS[401]})
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": len(served)}

    @app.get("/models", response_model=list[ModelInfo], responses={401: ERRORS[401]})
    async def list_models() -> list[dict[str, Any]]:
        return [s.info for s in served.values()]

    @app.post("/models/{name}/samples", responses={
        200: {"description": "the samples", "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
            "image/gif": {"schema": {"type": "string", "format": "binary"}},
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/Samples"}}}},
        **{c: ERRORS[c] for c in (400, 401, 404, 406, 413, 422, 429, 503)}})
    async def samples(name: str, body: SampleRequest, request: Request) -> Response:
        from ..plugins import MODALITIES

        s = get(name)
        modality = MODALITIES.get(s.loaded.modality)
        asked = body.model_dump(exclude_none=True, exclude={"n", "seed", "format"})
        request.state.note = f" model={name} n={body.n} seed={body.seed} options={printable(json.dumps(asked))}"
        fmt = choose_format(body.format, request.headers.get("accept"), modality.web_formats, s.info["modality"])
        given = body.options()
        labelled, answer = given, None
        if given.get("prompt") is not None and not s.loaded.prompt_is_prefix:  # the sentence model's first load
            labelled, answer = await run_in_threadpool(s.loaded.prompt_labels, given)  # takes seconds: off the loop
        options = s.loaded.sample_options(**labelled)  # a bad option: one line, before any work
        matched = {"prompt_match": answer.as_json()} if answer is not None else {}
        seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
        request.state.note = f" model={name} n={body.n} seed={seed} format={fmt} options={printable(json.dumps(asked))}"
        s.loaded.check_n(body.n)
        layout: dict[str, Any] = {}
        if modality.grids and options.get("labels") and len(options["labels"]) > 1 and fmt != "json":
            from ..io import label_grid

            options["labels"], layout["nrow"] = label_grid(options["labels"], body.n)

        def work() -> bytes:
            out = s.loaded.sample(body.n, seed=seed, **options)
            if fmt == "json":
                payload = {"model": name, "seed": seed, "n": body.n, "modality": s.info["modality"],
                           "options": given, **matched, "samples": modality.to_json(out)}
                return json.dumps(payload).encode("utf-8")
            return modality.encode(out, fmt, **layout)

        try:
            data = await s.slots.run(work, request.is_disconnected)
        except Gone:
            return error(499, "the client went away before its turn")
        except Busy as e:
            return error(429, f"model {name} is busy ({s.slots.workers} sampling, {s.slots.queue} waiting); "
                              f"retry after {e.retry_after} s", {"Retry-After": str(e.retry_after)})
        except (SampleTimeout, QueueTimeout) as e:
            where = "waiting in the queue" if isinstance(e, QueueTimeout) else "sampling"
            return error(503, f"the request ran past the {s.slots.time_limit:g} s limit while {where}; ask for "
                              "fewer samples or steps, or retry later", {"Retry-After": str(s.slots.retry_after())})
        if len(data) > MAX_OUTPUT_BYTES:
            return error(422, f"the answer would be {len(data):,} bytes; at most {MAX_OUTPUT_BYTES:,}: ask for fewer")
        media = "application/json" if fmt == "json" else modality.web_formats[fmt]
        headers = {"X-Seed": str(seed), "X-Samples": str(body.n), "Vary": "Accept"}
        if answer is not None:  # the match beside a PNG/WAV/GIF too: its label and each part's best 5 scores
            brief = answer.as_json()
            for part in brief["parts"]:
                part["scores"] = part["scores"][:5]
            text = json.dumps(brief, ensure_ascii=True)
            if len(text) > 4000:  # long class names: the label alone (the JSON answer has every score)
                text = json.dumps({k: v for k, v in brief.items() if k != "parts"}, ensure_ascii=True)
            if len(text) <= 4000:  # a header some proxies still pass; else only the JSON answer has it
                headers["X-Prompt-Match"] = text
        return Response(data, media_type=media, headers=headers)

    @app.get("/models/{name}/report", response_model=Report, responses={c: ERRORS[c] for c in (401, 404)})
    def report(name: str) -> dict[str, Any]:  # plain def: FastAPI runs it on a thread (it reads files)
        s = get(name)
        path = s.loaded.run_dir / "report.md"
        text = path.read_text(encoding="utf-8", errors="replace")[:1 << 20] if path.is_file() else None
        return {"name": name, "report": text, "figures": [f"/models/{name}/files/{f}" for f in figures(s)]}

    @app.get("/models/{name}/files/{filename}", responses={
        200: {"description": "a PNG figure of the run", "content": {"image/png": {}}},
        **{c: ERRORS[c] for c in (401, 404)}}, response_class=Response)
    def figure(name: str, filename: str) -> Response:
        s = get(name)
        if filename not in figures(s):
            return error(404, f"no figure '{filename[:100]}' in model {name}'s run (see /models/{name}/report)")
        return FileResponse(s.loaded.run_dir / filename, media_type="image/png")

    def figures(s: Served) -> list[str]:
        """The run's own PNGs: regular files in its folder (no links out of it), short plain names."""
        try:
            return sorted(p.name for p in s.loaded.run_dir.glob("*.png")
                          if FIGURE.fullmatch(p.name) and not p.is_symlink() and p.is_file())
        except OSError:
            return []

    app.openapi_schema = None
    _add_samples_schema(app)
    return Guard(app, token, allowed_hosts)  # type: ignore[return-value]


CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class Guard:
    """What every request passes, as a plain ASGI wrapper (no per-request task or response copy):
    the Host check, the token, the body size, one log line, and a last-resort 500 in one line.

    A body over MAX_BODY_BYTES is refused (413) before the app reads any of it when it says its
    length, and after at most MAX_BODY_BYTES + 1 bytes when it is chunked; the bytes read are handed
    on to the app unchanged. The FastAPI app is `.app` (TestClient's `client.app.app`)."""

    def __init__(self, app: FastAPI, token: str | None, allowed_hosts: list[str] | None):
        self.app, self.token, self.allowed_hosts = app, token, allowed_hosts

    def __getattr__(self, name: str) -> Any:  # .state, .openapi(), ... of the app
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        tic, status = time.perf_counter(), [0]
        state = scope.setdefault("state", {})  # request.state: the handler leaves its log note here

        async def send_logged(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal, receive = await self.check(scope, receive)
            if refusal is not None:
                await refusal(scope, receive, send_logged)
            else:
                await self.app(scope, receive, send_logged)
        except Exception as e:  # what the app's handlers did not answer (Starlette re-raises after its 500)
            log.error("internal error on %s: %s: %s", printable(scope["path"]), type(e).__name__, printable(str(e)))
            if not status[0]:
                await error(500, f"internal error ({type(e).__name__}); the server log has the details")(
                    scope, receive, send_logged)
        log.info("%s %s%s status=%d ms=%.0f", scope["method"], printable(scope["path"]), state.get("note", ""),
                 status[0], 1000 * (time.perf_counter() - tic))

    async def check(self, scope: dict, receive: Any) -> tuple[JSONResponse | None, Any]:
        """(an answer refusing the request, or None; the receive the app should use)."""
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
            return error(400, "this server answers only to " + ", ".join(self.allowed_hosts)
                         + " (start it with --host to serve other names)"), receive
        if self.token and scope["path"] not in PUBLIC and not _authorized(headers, self.token):
            return error(401, "missing or wrong token (send the header Authorization: Bearer TOKEN)",
                         {"WWW-Authenticate": "Bearer"}), receive
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                return too_big(length.decode("latin-1")[:20]), receive
            return None, receive
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return None, receive
        messages, size = [], 0
        while True:  # a chunked body: read it, but never more than the limit and one byte
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > MAX_BODY_BYTES:
                return too_big(f"more than {MAX_BODY_BYTES:,}"), receive
            if not message.get("more_body"):
                break
        replay = iter(messages)

        async def receive_again() -> dict:
            return next(replay, None) or await receive()

        return None, receive_again


def too_big(size: str) -> JSONResponse:
    return error(413, f"request body of {size} bytes; at most {MAX_BODY_BYTES:,}")


class Samples(BaseModel):
    model: str
    seed: int
    n: int
    modality: str
    options: dict[str, Any]
    prompt_match: dict[str, Any] | None = None
    samples: list[Any]


def _add_samples_schema(app: FastAPI) -> None:
    """Name the JSON answer's schema in the OpenAPI document (the route returns raw bytes)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})["Samples"] = Samples.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def choose_format(fmt: str | None, accept: str | None, formats: dict[str, str], modality: str) -> str:
    """The `format` field, else the first of the modality's formats the Accept header takes, else its default."""
    if fmt is not None:
        if fmt not in formats:
            raise ConfigError(f"format '{fmt}' does not fit a {modality} model", f"use {' or '.join(formats)}")
        return fmt
    if not accept or "*/*" in accept:
        return next(iter(formats))
    wanted = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for want in wanted:
        for f, media in formats.items():
            kind = media.split(";")[0]
            if want in (kind, kind.split("/")[0] + "/*"):
                return f
    from fastapi import HTTPException

    raise HTTPException(406, f"a {modality} model answers {', '.join(m.split(';')[0] for m in formats.values())}; "
                             f"the Accept header asked for {accept[:100]}")


def _hostname(host: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:8000' -> '[::1]', 'LocalHost' -> 'localhost'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0]


def _authorized(headers: dict[bytes, bytes], token: str) -> bool:
    given = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

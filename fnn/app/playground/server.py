"""The playground's web server: Starlette (routing, static files, WebSockets) on uvicorn.

``GET /`` serves the page, ``/static/*`` its ES modules and CSS (package data, no CDN), and
``/ws`` is one WebSocket per tab. The tab sends JSON messages::

    {"type": "config", "config": {...}}     settings (validated; see config.py)
    {"type": "play"} | {"type": "pause"} | {"type": "step"} | {"type": "reset"}
    {"type": "regenerate"}                  new data (seed + 1)
    {"type": "compare", "key": k, "values": [...], "epochs": n}
    {"type": "preset", "name": "oscillation" | "collapse"}
    {"type": "export"} | {"type": "checkpoint"}

and receives ``frame`` messages (see ``Session.snapshot``), ``compare``, ``explain``,
``export`` / ``checkpoint`` (the file's contents) and ``error`` messages. A bad message gets
an ``error`` reply and changes nothing; the session goes on. Each tab has its own session and
training task; a closed tab's task is cancelled and its session dropped.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import tempfile
from importlib import resources

import anyio
from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from fnn.app.playground.presets import PRESETS, explain_collapse, explain_oscillation
from fnn.app.playground.session import Session, compare

__all__ = ["app", "make_app", "SESSIONS", "MAX_MESSAGE", "MESSAGES", "Tab"]

MAX_MESSAGE = 64 * 1024          # bytes of one message from the page
# The messages a page may send: type -> its keys besides "type".
MESSAGES = {"config": {"config"}, "play": set(), "pause": set(), "step": set(),
            "reset": set(), "regenerate": set(), "compare": {"key", "values", "epochs"},
            "preset": {"name"}, "export": set(), "checkpoint": set()}
SESSIONS: set = set()            # the live tabs (tests check a closed tab leaves none)
FRAME_GAP_S = 0.01               # pause between frames, so messages get in
log = logging.getLogger("fnn.playground")
STATIC = resources.files("fnn.app.playground") / "static"


class Tab:
    """One WebSocket's session and its training task."""

    def __init__(self, ws: WebSocket):
        self.ws, self.session, self.task = ws, None, None
        self.lock = asyncio.Lock()

    async def send(self, msg: dict):
        await self.ws.send_text(json.dumps(msg, allow_nan=False))

    async def call(self, fn, *args):
        """Run ``fn(*args)`` on a worker thread, one at a time per tab. (The call goes in a
        box emptied when it runs: an idle worker keeps its last job, and must not keep a
        closed tab's session alive through it.)"""
        async with self.lock:
            return await anyio.to_thread.run_sync(_unbox, [(fn, args)])

    async def play_loop(self):
        while True:
            frame = await self.call(self.session.frame)
            await self.send(frame)
            if self.session.diverged:       # say so and stop; never freeze
                self.task = None
                await self.send({"type": "paused", "reason": "diverged"})
                return
            await asyncio.sleep(FRAME_GAP_S)

    def stop(self):
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def handle(self, msg: dict):
        """Check ``msg`` (its type, its keys) and run its ``on_<type>`` method."""
        kind = msg.get("type")
        if kind not in MESSAGES:
            raise ValueError(f"playground: unknown message type {kind!r}; expected one of "
                             f"{', '.join(MESSAGES)}")
        extra = sorted(set(msg) - MESSAGES[kind] - {"type"})
        if extra:
            raise ValueError(f"playground: message {kind!r} has unknown key(s) {extra}; "
                             f"expected {sorted(MESSAGES[kind]) or 'none'}")
        if self.session is None and kind != "config":
            raise ValueError("playground: send a 'config' message first")
        await getattr(self, f"on_{kind}")(msg)

    async def on_config(self, msg):
        cfg = msg.get("config", {})
        if self.session is None:
            self.session = await anyio.to_thread.run_sync(_unbox, [(Session, (cfg,))])
            change = "data"
        else:
            change = await self.call(self.session.update, cfg)
        await self.send(await self.call(self.session.snapshot, change in ("data", "run")))

    async def on_play(self, msg):
        if self.task is None:
            self.task = asyncio.create_task(self.play_loop())

    async def on_pause(self, msg):
        self.stop()
        await self.send({"type": "paused", "reason": "pause"})

    async def on_step(self, msg):
        self.stop()
        await self.send(await self.call(self.session.step))

    async def on_reset(self, msg):
        self.stop()
        await self.call(self.session.reset)
        await self.send(await self.call(self.session.snapshot, True))

    async def on_regenerate(self, msg):
        self.stop()
        seed = (self.session.config["seed"] + 1) % (2 ** 31)
        await self.call(self.session.update, {"seed": seed})
        await self.send(await self.call(self.session.snapshot, True))

    async def on_compare(self, msg):
        await self.send(await self.call(compare, self.session.config, msg.get("key"),
                                        msg.get("values"), msg.get("epochs", 300)))

    async def on_preset(self, msg):
        await self.preset(msg.get("name"))

    async def on_export(self, msg):
        text = await self.call(self.session.export_script)
        await self.send({"type": "export", "filename": "playground_run.py", "text": text})

    async def on_checkpoint(self, msg):
        data = await self.call(_checkpoint_bytes, self.session)
        await self.send({"type": "checkpoint", "filename": "playground_run.npz",
                         "base64": base64.b64encode(data).decode("ascii")})

    async def preset(self, name):
        if name not in PRESETS:
            raise ValueError(f"playground preset: name must be one of {sorted(PRESETS)}, "
                             f"got {name!r}")
        self.stop()
        p = PRESETS[name]
        await self.call(self.session.update, p["config"])
        await self.call(self.session.reset)
        if name == "oscillation":
            c, b = p["compare"], p["batch"]
            result = await self.call(compare, self.session.config, c["key"], c["values"],
                                     c["epochs"])
            await self.send(await self.call(self.session.snapshot, True))
            await self.send(result)
            cfg = {**self.session.config, "learningRate": b["learningRate"]}
            batches = await self.call(compare, cfg, b["key"], b["values"], b["epochs"])
            text = explain_oscillation(result, {**batches, "learningRate": b["learningRate"]})
        else:
            s = self.session
            await self.call(lambda: [s.train_epochs(10) for _ in range(p["epochs"] // 10)])
            await self.send(await self.call(s.snapshot, True))
            text = await self.call(explain_collapse, s)
        await self.send({"type": "explain", "preset": name, "text": text})


def _unbox(box: list):
    fn, args = box.pop()
    return fn(*args)


def _checkpoint_bytes(session: Session) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "run.npz")
        session.checkpoint(path)
        with open(path, "rb") as f:
            return f.read()


async def websocket(ws: WebSocket):
    await ws.accept()
    tab = Tab(ws)
    SESSIONS.add(tab)
    try:
        while True:
            text = await ws.receive_text()
            try:
                if len(text) > MAX_MESSAGE:
                    raise ValueError(f"playground: message of {len(text)} bytes, at most "
                                     f"{MAX_MESSAGE}")
                msg = json.loads(text)
                if not isinstance(msg, dict):
                    raise ValueError(f"playground: a message must be a JSON object, got "
                                     f"{type(msg).__name__}")
                await tab.handle(msg)
            except json.JSONDecodeError as err:
                await tab.send({"type": "error", "message": f"playground: not JSON: {err}"})
            except (ValueError, TypeError) as err:
                await tab.send({"type": "error", "message": str(err)})
            except (WebSocketDisconnect, asyncio.CancelledError):
                raise
            except Exception as err:  # never a crash or a stuck tab: report and go on
                log.exception("playground: message failed")
                await tab.send({"type": "error",
                                "message": f"playground: {type(err).__name__}: {err}"})
    except WebSocketDisconnect:
        pass
    finally:
        tab.stop()
        tab.session = None
        SESSIONS.discard(tab)


async def index(request):
    return FileResponse(str(STATIC / "index.html"))


def make_app() -> Starlette:
    return Starlette(routes=[Route("/", index), WebSocketRoute("/ws", websocket),
                             Mount("/static", StaticFiles(directory=str(STATIC)),
                                   name="static")])


app = make_app()

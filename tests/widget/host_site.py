"""A customer's web site for the widget's browser tests: pages served from a port of their own (another
origin than Chorus), and a TCP relay in front of Chorus whose connections the test can cut (a network drop
that the browser sees as one, mid-stream)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme shop</title>{head}
</head>
<body><h1>Acme shop</h1><p>Mattresses, pillows and other good things.</p>
<script src="{api}/widget.js" data-key="{key}" data-api="{api}"{extra} async></script>
</body></html>
"""


class _Pages(BaseHTTPRequestHandler):
    pages: dict[str, str] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class HostSite:
    """Pages at http://127.0.0.1:<port>/… (and the same server as http://localhost:<port>, another origin)."""

    port: int
    pages: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other_origin(self) -> str:
        return f"http://localhost:{self.port}"

    def add(
        self, path: str, *, api: str, key: str, csp: str | None = None, style: str | None = None, **data: str
    ) -> str:
        """A page with the widget's script tag (data-* attributes from `data`), under a Content-Security-Policy,
        with styles of its own."""
        extra = "".join(f' data-{name}="{html.escape(value)}"' for name, value in data.items())
        head = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(csp)}">' if csp else ""
        head += f"<style>{style}</style>" if style else ""
        self.pages[path] = PAGE.format(api=api, key=html.escape(key), extra=extra, head=head)
        return path


@contextlib.contextmanager
def host_site() -> Iterator[HostSite]:
    handler = type("Pages", (_Pages,), {"pages": {}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    site = HostSite(httpd.server_address[1], handler.pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Relay:
    """127.0.0.1:<port> → Chorus. `cut()` closes every open connection, as a network drop does."""

    port: int
    target_port: int
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    cuts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self.cuts += 1
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self.writers.update((client_w, server_w))

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.transport.abort()

        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))
        self.writers.difference_update((client_w, server_w))


@contextlib.asynccontextmanager
async def relay(target_port: int) -> AsyncIterator[Relay]:
    state = Relay(0, target_port)
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        state.cut()
        server.close()
        await server.wait_closed()

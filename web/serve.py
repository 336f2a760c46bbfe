"""A local static server for the built site, bound to 127.0.0.1 only."""
import functools
import http.server
import threading
from pathlib import Path

from common.errors import FacemoodError

TYPES = {".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript",
         ".json": "application/json", ".bin": "application/octet-stream", ".webmanifest": "application/manifest+json"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)


def start_server(directory, port=0, verbose=False):
    """Serve `directory` on 127.0.0.1:`port` in a background thread. Returns (server, base_url)."""
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        raise FacemoodError(f"{directory}: no built site here; run `build.py site` first")
    handler = functools.partial(_Handler, directory=str(directory))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:
        raise FacemoodError(f"cannot listen on 127.0.0.1:{port} ({e.strerror})") from None
    server.verbose = verbose
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def serve(directory, port=8000):
    """Serve until Ctrl-C."""
    server, url = start_server(directory, port, verbose=True)
    print(f"serving {directory} at {url} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()

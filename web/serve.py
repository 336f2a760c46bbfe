"""A local static server for the built site, bound to 127.0.0.1 only.

Compressible files go out gzip-encoded when the browser accepts it, as any production static host
would send them, so what the browser downloads here is what it downloads there. Each file is
compressed once and kept in memory until it changes on disk. With `isolate=True` every response
also carries the COOP/COEP headers that make the page cross-origin isolated (SharedArrayBuffer,
hence WASM threads).
"""
import functools
import gzip
import http.server
import io
import os
import sys
import threading
import urllib.parse
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from common.errors import FacemoodError

TYPES = {".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript",
         ".json": "application/json", ".bin": "application/octet-stream", ".webmanifest": "application/manifest+json"}
# Text, WebAssembly and model shards shrink under gzip; images and video are compressed already.
COMPRESSIBLE = {".html", ".js", ".mjs", ".css", ".json", ".svg", ".wasm", ".bin", ".txt", ".map",
                ".webmanifest", ".md", ""}
MIN_GZIP_BYTES = 1024  # below this the gzip header costs more than it saves
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
                     "Cross-Origin-Resource-Policy": "same-origin"}


class _GzipCache:
    """gzip bytes per file, recomputed when the file's size or mtime changes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = {}

    def get(self, path, stat):
        key = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            hit = self._entries.get(path)
        if hit and hit[0] == key:
            return hit[1]
        data = gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0)
        with self._lock:
            self._entries[path] = (key, data)
        return data


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)

    def end_headers(self):
        if self.server.isolate:
            for name, value in ISOLATION_HEADERS.items():
                self.send_header(name, value)
        super().end_headers()

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            if not urllib.parse.urlsplit(self.path).path.endswith("/"):
                return super().send_head()  # the redirect to ".../"
            path = os.path.join(path, "index.html")
        if not self._wants_gzip(path):
            return super().send_head()
        stat = os.stat(path)
        if self._not_modified_since(stat.st_mtime):
            self.send_response(304)
            self.send_header("Vary", "Accept-Encoding")
            self.end_headers()
            return None
        body = self.server.gzip_cache.get(path, stat)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
        self.end_headers()
        return io.BytesIO(body)

    def _not_modified_since(self, mtime):
        since = self.headers.get("If-Modified-Since")
        if not since or self.headers.get("If-None-Match"):
            return False
        try:
            return int(mtime) <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False

    def _wants_gzip(self, path):
        """Only plain files that compress, to clients that accept gzip, without a Range request."""
        accepted = {part.split(";")[0].strip() for part in self.headers.get("Accept-Encoding", "").split(",")}
        if "gzip" not in accepted or self.headers.get("Range"):
            return False
        if not os.path.isfile(path) or os.path.splitext(path)[1].lower() not in COMPRESSIBLE:
            return False
        return os.path.getsize(path) >= MIN_GZIP_BYTES


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A browser that drops a connection mid-response (a reload, a closed tab) is not an error
        # of the server's; anything else is still reported with its traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def start_server(directory, port=0, verbose=False, isolate=False):
    """Serve `directory` on 127.0.0.1:`port` in a background thread. Returns (server, base_url).

    `isolate`: send COOP/COEP so the page is cross-origin isolated (needed for WASM threads)."""
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        raise FacemoodError(f"{directory}: no built site here; run `build.py site` first")
    handler = functools.partial(_Handler, directory=str(directory))
    try:
        server = _Server(("127.0.0.1", port), handler)
    except OSError as e:
        raise FacemoodError(f"cannot listen on 127.0.0.1:{port} ({e.strerror})") from None
    server.verbose = verbose
    server.isolate = isolate
    server.gzip_cache = _GzipCache()
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def serve(directory, port=8000, isolate=False):
    """Serve until Ctrl-C."""
    server, url = start_server(directory, port, verbose=True, isolate=isolate)
    print(f"serving {directory} at {url}{' (cross-origin isolated)' if isolate else ''} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()

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


def _accepts_gzip(accept_encoding):
    """Whether an Accept-Encoding header takes gzip: named, or covered by `*`, with a q-value above 0
    (`gzip;q=0` refuses it)."""
    weights = {}
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        weights[coding.lower()] = _q_value(params)
    return weights.get("gzip", weights.get("*", 0.0)) > 0


def _q_value(params):
    """The q parameter of one Accept-Encoding item (1 when absent, 0 when unreadable)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}
    _varies = False  # this response's body depends on Accept-Encoding

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)

    def end_headers(self):
        if self.server.isolate:
            for name, value in ISOLATION_HEADERS.items():
                self.send_header(name, value)
        if self._varies:  # plain or gzip alike, so a cache never hands gzip to a client that refused it
            self.send_header("Vary", "Accept-Encoding")
            self._varies = False
        super().end_headers()

    def send_head(self):
        path = self.translate_path(self.path)
        if "\0" in path:  # `/%00`: no file has that name, and the os functions below refuse it
            self.send_error(400, "Bad request: a NUL character in the path")
            return None
        if os.path.isdir(path):
            if not urllib.parse.urlsplit(self.path).path.endswith("/"):
                return super().send_head()  # the redirect to ".../"
            path = os.path.join(path, "index.html")
        self._varies = _compressible(path)
        if not self._wants_gzip(path):
            return super().send_head()
        stat = os.stat(path)
        if self._not_modified_since(stat.st_mtime):
            self.send_response(304)
            self.end_headers()
            return None
        body = self.server.gzip_cache.get(path, stat)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
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
        if not _accepts_gzip(self.headers.get("Accept-Encoding", "")) or self.headers.get("Range"):
            return False
        return _compressible(path) and os.path.getsize(path) >= MIN_GZIP_BYTES


def _compressible(path):
    """A plain file of a kind that goes out gzip-encoded to the clients that take it."""
    return os.path.isfile(path) and os.path.splitext(path)[1].lower() in COMPRESSIBLE


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
    except (OSError, OverflowError) as e:  # OverflowError: a port above 65535
        raise FacemoodError(f"cannot listen on 127.0.0.1:{port} ({getattr(e, 'strerror', None) or e})") from None
    server.verbose = verbose
    server.isolate = isolate
    server.gzip_cache = _GzipCache()
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def serve(directory, port=8000, isolate=True):
    """Serve until Ctrl-C."""
    server, url = start_server(directory, port, verbose=True, isolate=isolate)
    print(f"serving {directory} at {url}{' (cross-origin isolated)' if isolate else ''} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()

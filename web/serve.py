"""A local static server for the built site, bound to 127.0.0.1 only.

Compressible files go out gzip-encoded when the browser accepts it, as any production static host
would send them, so what the browser downloads here is what it downloads there. Each file is
compressed once and kept in memory until it changes on disk. With `isolate=True` every response
also carries the COOP/COEP headers that make the page cross-origin isolated (SharedArrayBuffer,
hence WASM threads).

Every response says `Cache-Control: no-cache` and carries an ETag: the browser keeps its copies
but asks before each use, so a page never mixes files of two builds (the shards' checksums would
then refuse them). The ETag names the file's inode, size and time: a new build is a new folder,
so its files never answer to an older build's tags.
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
CACHE_HEADERS = {"Cache-Control": "no-cache"}  # keep a copy, but ask before each use (see above)


class _GzipCache:
    """gzip bytes per file, recomputed when the file itself (inode), its size or mtime changes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = {}

    def get(self, path, stat):
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
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


def _etag(stat):
    # Weak: the gzip and the plain body of one file share it, as they share their meaning.
    return f'W/"{stat.st_ino:x}-{stat.st_size:x}-{stat.st_mtime_ns:x}"'


def _matches(if_none_match, etag):
    """Whether an If-None-Match header names this ETag (weak comparison, `*` for any)."""
    tags = [tag.strip() for tag in if_none_match.split(",")]
    bare = etag.removeprefix("W/")
    return "*" in tags or any(tag.removeprefix("W/") == bare for tag in tags)


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}
    _varies = False  # this response's body depends on Accept-Encoding
    _etag = None  # this response's file's ETag

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
        if self._etag:
            self.send_header("ETag", self._etag)
            self._etag = None
        for name, value in CACHE_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def list_directory(self, path):
        # A folder without index.html is not a page of the site.
        self.send_error(404, "File not found")
        return None

    def send_head(self):
        path = self.translate_path(self.path)
        if "\0" in path:  # `/%00`: no file has that name, and the os functions below refuse it
            self.send_error(400, "Bad request: a NUL character in the path")
            return None
        if os.path.isdir(path):
            if not urllib.parse.urlsplit(self.path).path.endswith("/"):
                return super().send_head()  # the redirect to ".../"
            path = os.path.join(path, "index.html")
        if not self._inside_site(path):  # a link in the folder to a file elsewhere
            self.send_error(404, "File not found")
            return None
        if not os.path.isfile(path):
            return super().send_head()  # its 404
        stat = os.stat(path)
        self._varies = _compressible(path)
        self._etag = _etag(stat)
        if self._not_modified(stat):
            self.send_response(304)
            self.end_headers()
            return None
        if not self._wants_gzip(path):
            return super().send_head()
        body = self.server.gzip_cache.get(path, stat)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
        self.end_headers()
        return io.BytesIO(body)

    def _not_modified(self, stat):
        """A conditional request the file still answers: If-None-Match when given, else If-Modified-Since."""
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            return _matches(if_none_match, _etag(stat))
        since = self.headers.get("If-Modified-Since")
        if not since:
            return False
        try:
            return int(stat.st_mtime) <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False

    def _inside_site(self, path):
        site = os.path.realpath(self.directory)
        return os.path.commonpath([site, os.path.realpath(path)]) == site

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
        raise FacemoodError(f"{directory}: no built site here; run `build.py site --out {directory}` first")
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

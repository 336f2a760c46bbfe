"""The site's server: a browser that goes away mid-download is not reported as an error."""
import gzip
import os
import socket
import struct
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from common.errors import FacemoodError
from web.serve import start_server


def test_a_dropped_connection_is_not_reported(tmp_path, capfd):
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    (tmp_path / "big.bin").write_bytes(os.urandom(32 * 1024 * 1024))  # more than the socket buffers hold
    server, url = start_server(tmp_path)
    try:
        address = urllib.parse.urlsplit(url)
        client = socket.create_connection((address.hostname, address.port))
        client.sendall(b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.recv(1024).startswith(b"HTTP/1.0 200")
        # Closed with a reset, as a browser tab that is closed mid-download does.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        time.sleep(1.0)  # the server's thread meets the reset while writing
    finally:
        server.shutdown()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err


@pytest.fixture
def served(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    (tmp_path / "app.js").write_text("console.log('facemood');\n" * 200)  # compressible, over 1 KB
    (tmp_path / "photo.png").write_bytes(os.urandom(4096))  # compressed already
    server, url = start_server(tmp_path)
    yield url
    server.shutdown()


def _get(url, accept_encoding):
    request = urllib.request.Request(url, headers={"Accept-Encoding": accept_encoding} if accept_encoding else {})
    with urllib.request.urlopen(request) as response:
        return response.headers, response.read()


@pytest.mark.parametrize("accept_encoding, gzipped", [
    ("gzip", True), ("br, gzip;q=0.5", True), ("*", True), ("GZIP ; Q=1", True),
    ("gzip;q=0", False), ("gzip; q=0.0, identity", False), ("*;q=0", False), ("identity", False), ("", False),
    ("gzip;q=0, *", False),  # gzip named and refused: the wildcard does not bring it back
])
def test_gzip_only_where_accepted_and_vary_on_every_compressible_file(served, accept_encoding, gzipped):
    headers, body = _get(served + "app.js", accept_encoding)
    assert (headers.get("Content-Encoding") == "gzip") == gzipped
    assert (gzip.decompress(body) if gzipped else body).startswith(b"console.log")
    assert headers.get_all("Vary") == ["Accept-Encoding"]  # a cache must not reuse one for the other
    headers, _ = _get(served + "photo.png", accept_encoding)
    assert headers.get("Content-Encoding") is None and headers.get("Vary") is None


def test_a_port_out_of_range_is_a_one_line_error(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    with pytest.raises(FacemoodError, match="cannot listen on 127.0.0.1:70000"):
        start_server(tmp_path, port=70000)


def test_a_nul_in_the_path_is_a_bad_request_not_a_server_error(served, capfd):
    for path in ("%00", "a%00.js", "%00/"):
        with pytest.raises(urllib.error.HTTPError) as info:
            _get(url=served + path, accept_encoding="gzip")
        assert info.value.code == 400
    assert _get(served + "app.js", None)[1].startswith(b"console.log")  # the server still serves
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err

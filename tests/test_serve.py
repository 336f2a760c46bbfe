"""The site's server: a browser that goes away mid-download is not reported as an error."""
import gzip
import os
import re
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


def test_the_next_steps_name_the_folder_given(tmp_path, capsys):
    """`site --out X` says to serve X, and serving a folder with no site says to build X: the
    commands without the folder would build and serve dist/."""
    import build

    assert build.main(["site", "--out", str(tmp_path / "mine")]) == 0
    assert f"serve it with `build.py serve --dir {tmp_path / 'mine'}`" in capsys.readouterr().out
    with pytest.raises(FacemoodError, match=f"run `build.py site --out {tmp_path / 'none'}` first"):
        start_server(tmp_path / "none")


def test_a_nul_in_the_path_is_a_bad_request_not_a_server_error(served, capfd):
    for path in ("%00", "a%00.js", "%00/"):
        with pytest.raises(urllib.error.HTTPError) as info:
            _get(url=served + path, accept_encoding="gzip")
        assert info.value.code == 400
    assert _get(served + "app.js", None)[1].startswith(b"console.log")  # the server still serves
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err


def _status(url, **headers):
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers


@pytest.mark.parametrize("accept_encoding", ["gzip", "identity"])
def test_a_rebuild_dated_earlier_is_not_answered_304(tmp_path, accept_encoding):
    """A site rebuilt from older files (a model trained before the one it replaces): a browser
    revalidating its copy gets the new file, whichever date the new file carries. Every response
    asks the browser to revalidate before each use."""
    site = tmp_path / "dist"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>t</title>")
    (site / "model.json").write_text('{"build": 1}' * 200)
    server, url = start_server(site)
    try:
        status, first = _status(url + "model.json", **{"Accept-Encoding": accept_encoding})
        assert status == 200 and first["Cache-Control"] == "no-cache" and first["ETag"]
        revalidate = {"Accept-Encoding": accept_encoding, "If-None-Match": first["ETag"],
                      "If-Modified-Since": first["Last-Modified"]}
        assert _status(url + "model.json", **revalidate)[0] == 304  # unchanged: the copy is good
        rebuilt = tmp_path / "rebuilt"  # as atomic_dir swaps a new build in: a new folder, renamed
        rebuilt.mkdir()
        (rebuilt / "index.html").write_text("<!doctype html><title>t</title>")
        (rebuilt / "model.json").write_text('{"build": 2}' * 200)
        week_ago = time.time() - 7 * 24 * 3600
        os.utime(rebuilt / "model.json", (week_ago, week_ago))
        os.rename(site, tmp_path / "old")
        os.rename(rebuilt, site)
        status, headers = _status(url + "model.json", **revalidate)
        assert status == 200 and headers["ETag"] != first["ETag"]
    finally:
        server.shutdown()


def test_no_folder_listings_and_no_links_out_of_the_site(tmp_path):
    site = tmp_path / "dist"
    (site / "model").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>t</title>")
    (site / "model" / "model.json").write_text("{}")
    (tmp_path / "secret.txt").write_text("not part of the site")
    (site / "secret.txt").symlink_to(tmp_path / "secret.txt")
    (site / "inside.json").symlink_to(site / "model" / "model.json")
    server, url = start_server(site)
    try:
        assert _status(url + "model/")[0] == 404
        assert _status(url + "secret.txt")[0] == 404
        assert _status(url + "inside.json")[0] == 200  # a link within the site is the site's file
        assert _status(url)[0] == 200 and _status(url + "model/model.json")[0] == 200
    finally:
        server.shutdown()


def test_a_rendered_site_is_dated_when_it_is_built_and_its_licences_read_as_text(tmp_path):
    """Every file of a build carries the build's time, not its source's (a model trained before the
    one it replaces must still look newer to a browser); the licences the page links to are text."""
    from conftest import SHIPPED_MODEL
    from web.render import render_site

    started = time.time() - 2  # file systems keep coarse times
    dist = render_site(SHIPPED_MODEL, tmp_path / "dist")
    older = [str(p.relative_to(dist)) for p in dist.rglob("*") if p.is_file() and p.stat().st_mtime < started]
    assert older == []
    page = (dist / "index.html").read_text()
    links = re.findall(r'href="(detector/LICENSE[^"]*)"', page)
    assert links == ["detector/LICENSE.txt"]
    server, url = start_server(dist)
    try:
        for name in ("LICENSE.txt", "LICENSE-blazeface-front.txt"):
            status, headers = _status(url + "detector/" + name)
            assert status == 200 and headers["Content-Type"].startswith("text/plain"), name
    finally:
        server.shutdown()

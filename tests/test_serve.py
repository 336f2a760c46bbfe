"""The site's server: a browser that goes away mid-download is not reported as an error."""
import os
import socket
import struct
import time
import urllib.parse

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

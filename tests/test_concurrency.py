"""The GIL is released while Apache reads the request body or writes to a
slow client: other requests keep being served meanwhile."""
import socket
import threading
import time

import pytest

from conftest import server_fixture

apache = server_fixture('WSGIScriptAlias /input @APPS@/input.wsgi\nWSGIScriptAlias /hello @APPS@/hello.wsgi\n'
                        'WSGIScriptAlias /r @APPS@/response.wsgi\n'
                        'SendBufferSize 65536\n', mpms=['event', 'worker'])


def timed_gets(apache, n=10):
    worst = 0
    for _ in range(n):
        t = time.time()
        assert apache.get('/hello').status == 200
        worst = max(worst, time.time() - t)
    return worst


def test_slow_request_body_does_not_block_others(apache):
    s = socket.create_connection(('127.0.0.1', apache.port), timeout=30)
    s.sendall(b'POST /input/read HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nConnection: close\r\n\r\n')

    def trickle():
        for _ in range(20):
            s.sendall(b'ab')
            time.sleep(0.1)

    t = threading.Thread(target=trickle)
    t.start()
    time.sleep(0.3)  # the app is now inside wsgi.input.read(), waiting for bytes
    assert timed_gets(apache) < 0.5
    t.join()
    assert b'"len": 40' in s.recv(65536)
    s.close()


def test_slow_reader_does_not_block_others(apache):
    """4 MiB cannot fit in 64 KiB + 4 KiB of socket buffers: the handler blocks
    writing to this client, which reads nothing, then goes away."""
    s = socket.create_connection(('127.0.0.1', apache.port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b'GET /r/big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert s.recv(4096).startswith(b'HTTP/1.1 200')
    time.sleep(0.5)
    assert timed_gets(apache) < 0.5
    s.close()
    assert apache.wait_for_log("Client closed the connection while WSGI script", timeout=15)
    assert timed_gets(apache, 3) < 0.5

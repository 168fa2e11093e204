"""wsgi.input: reads, lines, chunked bodies, disconnects."""
import hashlib
import json
import socket
import time

from conftest import server_fixture

CONF = """
WSGIScriptAlias /input @APPS@/input.wsgi
WSGIScriptAlias /chunked @APPS@/input.wsgi
<Location /chunked>
    WSGIChunkedRequest On
</Location>
"""

apache = server_fixture(CONF)


def post_json(apache, path, body):
    r = apache.post(path, body)
    assert r.status == 200, (r, apache.error_log()[-2000:])
    return json.loads(r.body)


def test_read_all(apache):
    body = bytes(range(256)) * 4096  # 1 MiB
    res = post_json(apache, '/input/read', body)
    assert res == {'len': len(body), 'sha256': hashlib.sha256(body).hexdigest(), 'again': 0}


def test_read_n_never_exceeds_n(apache):
    body = b'x' * 10000
    res = post_json(apache, '/input/readn?3000', body)
    assert res['sizes'] == [3000, 3000, 3000, 1000]
    assert res['sha256'] == hashlib.sha256(body).hexdigest()
    assert res['zero'] is True


def test_readline_and_limit(apache):
    body = b'first line\nsecond\n\nlast without newline'
    assert post_json(apache, '/input/readline', body)['lines'] == ['first line\n', 'second\n', '\n', 'last without newline']
    assert post_json(apache, '/input/readline?4', b'abcdefghij\nxy\n')['lines'] == ['abcd', 'efgh', 'ij\n', 'xy\n']


def test_readlines_hint_and_iteration(apache):
    body = b'a\nbb\nccc\ndddd\n'
    assert post_json(apache, '/input/readlines', body) == {'lines': ['a\n', 'bb\n', 'ccc\n', 'dddd\n'], 'rest': ''}
    assert post_json(apache, '/input/readlines?4', body) == {'lines': ['a\n', 'bb\n'], 'rest': 'ccc\ndddd\n'}
    assert post_json(apache, '/input/iter', body)['lines'] == ['a\n', 'bb\n', 'ccc\n', 'dddd\n']


def test_mixed_reads(apache):
    assert post_json(apache, '/input/mixed', b'line\nabcrest')['parts'] == ['line\n', 'abc', 'rest']


def test_reads_stop_at_content_length(apache):
    # Two requests pipelined on one connection: the first body must not
    # swallow the second request.
    req = (b'POST /input/read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'
           b'GET /input/read HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    out = apache.raw(req)
    assert out.count(b'HTTP/1.1 200 OK') == 2
    assert hashlib.sha256(b'hello').hexdigest().encode() in out


def chunked(parts):
    return b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in parts) + b'0\r\n\r\n'


def test_chunked_body_with_chunked_request_on(apache):
    parts = [b'a' * 1000, b'b' * 5000, b'c' * 17]
    out = apache.raw(b'POST /chunked/read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                     b'Connection: close\r\n\r\n' + chunked(parts))
    assert out.startswith(b'HTTP/1.1 200 OK')
    res = json.loads(out.split(b'\r\n\r\n', 1)[1])
    assert res['len'] == 6017
    assert res['sha256'] == hashlib.sha256(b''.join(parts)).hexdigest()


def test_chunked_body_refused_with_411_by_default(apache):
    out = apache.raw(b'POST /input/read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                     b'Connection: close\r\n\r\n' + chunked([b'abc']))
    assert out.startswith(b'HTTP/1.1 411')
    assert apache.wait_for_log('WSGI0139: Request requires chunked transfer encoding, but support for chunked '
                               'transfer encoding has not been enabled.')


def test_client_disconnect_mid_body_raises_oserror(apache):
    s = socket.create_connection(('127.0.0.1', apache.port))
    s.sendall(b'POST /input/read HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n' + b'x' * 1000)
    time.sleep(0.3)
    s.close()
    assert apache.wait_for_log('input error: OSError: mod_wsgi request data read error', timeout=15)
    assert apache.get('/input/read').status == 200  # still serving


def test_100_continue_only_when_the_app_reads(apache):
    """Expect: 100-continue: the interim answer comes with the first read of
    wsgi.input; an app that never reads answers directly."""
    s = socket.create_connection(('127.0.0.1', apache.port), timeout=10)
    s.sendall(b'POST /input/read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n'
              b'Connection: close\r\n\r\n')
    assert s.recv(100) == b'HTTP/1.1 100 Continue\r\n\r\n'
    s.sendall(b'hello')
    out = b''
    while True:
        data = s.recv(65536)
        if not data:
            break
        out += data
    s.close()
    assert out.startswith(b'HTTP/1.1 200 OK') and hashlib.sha256(b'hello').hexdigest().encode() in out
    s = socket.create_connection(('127.0.0.1', apache.port), timeout=10)
    s.sendall(b'POST /input/headers-only HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n'
              b'Connection: close\r\n\r\n')
    assert s.recv(200).startswith(b'HTTP/1.1 200 OK')
    s.close()

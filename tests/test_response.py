"""start_response, write() and the response iterable."""
import socket
import time
import zlib

import pytest

from conftest import server_fixture

CONF = """
WSGIScriptAlias /r @APPS@/response.wsgi
<Location /r/slow-stream>
    SetOutputFilter DEFLATE
</Location>
"""

apache = server_fixture(CONF)


def test_list_tuple_generator_bodies(apache):
    r = apache.get('/r/list')
    assert (r.status, r.body, r.header('Content-Length')) == (200, b'abc', '3')
    assert r.header('Content-Type') == 'text/plain'
    r = apache.get('/r/tuple')
    assert (r.status, r.body) == (201, b'xy')
    r = apache.get('/r/generator')
    assert r.body == b''.join(b'line %d\n' % i for i in range(100))
    assert apache.get('/r/empty').status == 204
    assert len(apache.get('/r/big').body) == 4 * 1024 * 1024


def test_write_callable(apache):
    assert apache.get('/r/write').body == b'written returned'


def test_status_and_headers(apache):
    r = apache.get('/r/status')
    assert (r.status, r.reason) == (418, "I'm a teapot")
    r = apache.get('/r/headers')
    assert sorted(r.headers_named('Set-Cookie')) == ['a=1', 'b=2']
    assert r.header('WWW-Authenticate') == 'Basic realm="x"'
    assert r.header('X-Latin').encode('latin-1') == 'caf\xe9'.encode('latin-1')


def raw_head(apache, path, keep_alive_then=None):
    """HEAD on a raw socket (http.client never reads a body on HEAD, so it
    cannot see one): -> (status line, {header: value}, bytes after the blank line)."""
    req = b'HEAD %s HTTP/1.1\r\nHost: x\r\n' % path.encode()
    if keep_alive_then:
        req += b'\r\n' + keep_alive_then
    else:
        req += b'Connection: close\r\n\r\n'
    out = apache.raw(req)
    assert b'\r\n\r\n' in out, out
    head, rest = out.split(b'\r\n\r\n', 1)
    lines = head.decode('latin-1').split('\r\n')
    headers = {}
    for line in lines[1:]:
        k, v = line.split(':', 1)
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, rest


HEAD_PATHS = ['/r/list', '/r/tuple', '/r/generator', '/r/write', '/r/big', '/r/close']


@pytest.mark.parametrize('path', HEAD_PATHS)
def test_head_sends_headers_and_no_body(apache, path):
    g = apache.get(path)
    status, headers, rest = raw_head(apache, path)
    assert status == 'HTTP/1.1 %d %s' % (g.status, g.reason)
    assert rest == b'', rest[:200]  # not a single body byte after the blank line
    assert headers['content-type'] == g.header('Content-Type')
    assert 'transfer-encoding' not in headers  # no chunked framing either
    if path in ('/r/list', '/r/tuple', '/r/big'):
        # A list/tuple response gets its Content-Length, the GET body's length, also on HEAD.
        assert headers['content-length'] == g.header('Content-Length') == str(len(g.body))


@pytest.mark.parametrize('path', HEAD_PATHS)
def test_head_on_a_kept_alive_connection_leaves_the_next_response_intact(apache, path):
    """Any body bytes sent after a HEAD response would be read as the start of
    the next response on the connection."""
    # The follow-up is HTTP/1.0, so its own body is never chunked: 'abc' then close.
    status, _, rest = raw_head(apache, path, b'GET /r/list HTTP/1.0\r\nHost: x\r\n\r\n')
    assert status.startswith('HTTP/1.1 2')
    assert rest.startswith(b'HTTP/1.1 200 OK\r\n'), rest[:200]
    assert rest.endswith(b'\r\n\r\nabc') and rest.count(b'HTTP/1.1') == 1, rest[:400]


def test_head_calls_close_of_the_iterable(apache):
    before = apache.error_log().count('close called for close-ok')
    status, _, rest = raw_head(apache, '/r/close')
    assert (status, rest) == ('HTTP/1.1 200 OK', b'')
    deadline = time.time() + 5
    while apache.error_log().count('close called for close-ok') == before and time.time() < deadline:
        time.sleep(0.05)
    assert apache.error_log().count('close called for close-ok') == before + 1


def test_close_is_called(apache):
    assert apache.get('/r/close').body == b'onetwo'
    assert apache.wait_for_log('close called for close-ok')


def test_app_exception_gives_500_and_traceback(apache):
    r = apache.get('/r/raise')
    assert r.status == 500
    log = apache.error_log()
    assert "RuntimeError exception raised processing WSGI script '%s/response.wsgi' for " % apache.apps in log
    assert 'Traceback (most recent call last):' in log
    assert 'RuntimeError: the application failed on purpose' in log
    assert apache.get('/r/list').status == 200


def test_exception_in_iterable_before_output_gives_500_and_close(apache):
    assert apache.get('/r/raise-in-iterable').status == 500
    assert apache.wait_for_log('ValueError: failure inside the response iterable')
    assert apache.wait_for_log('close called for close-fail-before')


def raw_get(apache, path, timeout=10):
    return apache.raw(b'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' % path.encode(), timeout=timeout)


def test_exception_after_output_cuts_the_connection(apache):
    out = raw_get(apache, '/r/raise-after-output')
    assert out.startswith(b'HTTP/1.1 200 OK')
    assert b'one' in out
    assert not out.endswith(b'0\r\n\r\n')  # no final chunk: the client sees a truncated body
    assert apache.wait_for_log('close called for close-fail-after')


def test_non_bytes_items(apache):
    assert apache.get('/r/str-item').status == 500
    assert apache.wait_for_log('TypeError: response iterable must yield bytes, not str')
    out = raw_get(apache, '/r/str-item-after')
    assert out.startswith(b'HTTP/1.1 200 OK') and not out.endswith(b'0\r\n\r\n')
    assert apache.wait_for_log('close called for close-str-after')


def test_invalid_status_lines_give_500(apache):
    for q in ['200', 'OK', '20%200K', '200%20OK%0D%0AX-Injected:%20yes']:
        r = apache.get('/r/bad-status?' + q)
        assert r.status == 500, q
        assert r.header('X-Injected') is None
    log = apache.error_log()
    assert 'status code must be a 3 digit integer' in log and 'no space following status code' in log


def test_invalid_headers_give_500_naming_the_script(apache):
    for op, msg in [('bad-header-crlf', 'carriage return/line feed character in header value'),
                    ('bad-header-type', 'TypeError: must be str, not bytes'),
                    ('bad-header-list', 'start_response() argument 2 must be list, not tuple'),
                    ('hop-by-hop', "hop-by-hop header 'Connection' is not allowed"),
                    ('bad-content-length', "invalid Content-Length header value: 'twelve'")]:
        r = apache.get('/r/' + op)
        assert r.status == 500, op
        assert r.header('X-Injected') is None
        assert apache.wait_for_log(msg), op
    assert "processing WSGI script '%s/response.wsgi'" % apache.apps in apache.error_log()


def test_exc_info_replaces_headers_before_output(apache):
    r = apache.get('/r/exc-info')
    assert (r.status, r.body) == (503, b'replaced by exc_info')


def test_exc_info_after_output_reraises(apache):
    out = raw_get(apache, '/r/exc-info-after-write')
    assert out.startswith(b'HTTP/1.1 200 OK') and b'partial' in out
    assert apache.wait_for_log("KeyError: 'too late'")


SECOND_CALL = 'RuntimeError: start_response() called more than once without exc_info'


def test_second_start_response_after_output_is_an_error(apache):
    out = raw_get(apache, '/r/twice-after-output')
    assert b'partial' in out
    assert apache.wait_for_log(SECOND_CALL)


def test_second_start_response_before_output_is_an_error(apache):
    # PEP 3333: a second call without exc_info is a fatal error (wsgiref
    # raises too); it must not silently replace the first call's headers.
    before = apache.error_log().count(SECOND_CALL)
    r = apache.get('/r/twice-before-output')
    assert r.status == 500 and b'never' not in r.body
    assert apache.wait_for_log(SECOND_CALL) and apache.error_log().count(SECOND_CALL) > before


def test_exc_info_must_be_a_triple(apache):
    r = apache.get('/r/bad-exc-info')
    assert r.status == 500
    assert apache.wait_for_log("RuntimeError: start_response() argument 'exc_info' must be a 3-tuple or None")


def test_missing_start_response(apache):
    assert apache.get('/r/no-start-response').status == 500
    assert apache.wait_for_log('start_response() must be called before response content is produced')


def test_content_length_truncates_excess_output(apache):
    r = apache.get('/r/cl-truncate')
    assert (r.body, r.header('Content-Length')) == (b'01234', '5')
    assert apache.wait_for_log('close called for truncate')


def test_short_content_length_is_logged_and_connection_closed(apache):
    start = time.time()
    out = apache.raw(b'GET /r/cl-short HTTP/1.1\r\nHost: x\r\n\r\n')  # keep-alive requested
    assert time.time() - start < 5  # closed by the server, not by the client timeout
    assert out.endswith(b'\r\n\r\n01234')
    assert apache.wait_for_log('is shorter than its Content-Length: 5 of 10 bytes sent')


def test_streaming_through_mod_deflate(apache):
    s = socket.create_connection(('127.0.0.1', apache.port), timeout=10)
    s.sendall(b'GET /r/slow-stream HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n')
    start, buf = time.time(), b''
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    text = b''
    while b'first chunk' not in text:
        data = s.recv(65536)
        assert data, 'connection closed before the first chunk'
        buf += data
        if b'\r\n\r\n' in buf:
            head, body = buf.split(b'\r\n\r\n', 1)
            assert b'Content-Encoding: gzip' in head
            # de-chunk what we have
            text, rest = b'', body
            while rest:
                size_line, _, rest = rest.partition(b'\r\n')
                n = int(size_line or b'0', 16)
                if n == 0 or len(rest) < n:
                    break
                text += d.decompress(rest[:n])
                rest = rest[n + 2:]
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert time.time() - start < 1.2  # arrived before the app's 1.5 s pause ended
    s.close()


def test_client_disconnect_stops_generator_and_calls_close(apache):
    s = socket.create_connection(('127.0.0.1', apache.port), timeout=10)
    s.sendall(b'GET /r/forever HTTP/1.1\r\nHost: x\r\n\r\n')
    got = 0
    while got < 200000:
        got += len(s.recv(65536))
    s.close()
    assert apache.wait_for_log('generator finally ran after', timeout=15)
    assert apache.get('/r/list').status == 200


def test_objects_kept_past_their_request_fail_cleanly(apache):
    """wsgi.input and write() stored by the app and used after their request
    raise Python errors (they never reach the finished Apache request)."""
    for where in ('/r/use-kept', '/r/use-kept-in-thread'):
        conn = __import__('http.client').client.HTTPConnection('127.0.0.1', apache.port, timeout=10)
        conn.request('GET', '/r/keep')  # same connection: same child, also under prefork
        assert conn.getresponse().read() == b'kept'
        conn.request('GET', where)
        r = conn.getresponse()
        body = r.read().decode()
        conn.close()
        assert r.status == 200
        assert 'read: OSError: mod_wsgi request data read error: request has already completed' in body, body
        assert 'write: RuntimeError: write() called after request completed' in body, body
    assert apache.get('/r/list').status == 200

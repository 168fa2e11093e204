"""An app wrapped in wsgiref.validate.validator sees no PEP 3333 violation."""
import hashlib

from conftest import server_fixture

CONF = """
WSGIScriptAlias /v @APPS@/validated.wsgi
WSGIChunkedRequest On
"""

apache = server_fixture(CONF)


def expect(method, script, path, query, body=b''):
    return ('%s|%s|%s|%s|%d|%s' % (method, script, path, query, len(body), hashlib.sha256(body).hexdigest())).encode('latin-1')


def test_get_head_post_chunked_unicode(apache):
    r = apache.get('/v/some/path?x=1')
    assert r.status == 200 and r.body == expect('GET', '/v', '/some/path', 'x=1')
    h = apache.request('HEAD', '/v/some/path?x=1')
    assert h.status == 200 and h.body == b''
    form = b'name=value&other=%C3%A9'
    r = apache.post('/v/form', form, headers={'Content-Type': 'application/x-www-form-urlencoded'})
    assert r.body == expect('POST', '/v', '/form', '', form)
    big = bytes(range(256)) * 4096
    r = apache.post('/v/big', big, headers={'Content-Type': 'application/octet-stream'})
    assert r.status == 200 and r.body == expect('POST', '/v', '/big', '', big)
    parts = [b'x' * 3000, b'y' * 100]
    chunked = b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in parts) + b'0\r\n\r\n'
    out = apache.raw(b'POST /v/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                     b'Content-Type: text/plain\r\nConnection: close\r\n\r\n' + chunked)
    assert out.startswith(b'HTTP/1.1 200') and out.endswith(expect('POST', '/v', '/chunked', '', b''.join(parts)))
    r = apache.get('/v/%C3%A9t%C3%A9?q=%E2%82%AC')
    assert r.body == expect('GET', '/v', '/été'.encode('utf-8').decode('latin-1'), 'q=%E2%82%AC')
    log = apache.error_log()
    assert 'AssertionError' not in log and 'WSGIWarning' not in log and 'Traceback' not in log, log

"""Edge cases: vhost alias precedence, .htaccess, Python that cannot start,
LimitRequestBody, HTTP/2 (mod_http2) and SetEnv colliding with a header.

Where the expected values are mod_wsgi's, they were observed with Debian's
mod_wsgi 4.9.4 (libapache2-mod-wsgi-py3) under the same configurations.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import MPMS, server_fixture

CRASH_MARKERS = ('exit signal', 'Segmentation fault', 'Fatal Python error', 'AH00052', 'Aborted')


def assert_no_crash(apache):
    log = apache.error_log()
    for marker in CRASH_MARKERS:
        assert marker not in log, log[-3000:]


def write(path, text, mtime=None):
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, 0o644)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def chunked(parts):
    return b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in parts) + b'0\r\n\r\n'


def split_response(out):
    """Raw HTTP/1.1 response bytes -> (status line, header block, body),
    the body de-chunked when it came chunked."""
    head, _, body = out.partition(b'\r\n\r\n')
    if re.search(br'(?im)^transfer-encoding:\s*chunked\s*$', head):
        data, rest = b'', body
        while True:
            size, _, rest = rest.partition(b'\r\n')
            n = int(size.split(b';')[0] or b'0', 16)
            if n == 0:
                break
            data, rest = data + rest[:n], rest[n + 2:]
        body = data
    return head.split(b'\r\n')[0], head, body


# --- WSGIScriptAlias precedence between the main server and name-based vhosts

NAMED_APP = """def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%s|%s|%s' % (NAME, environ['SCRIPT_NAME'], environ['PATH_INFO'])).encode()]
"""

VHOSTS = """
WSGIScriptAlias /app/special @APPS@/s.wsgi
WSGIScriptAlias / @APPS@/a.wsgi
WSGIScriptAlias /app @APPS@/never.wsgi
<VirtualHost 127.0.0.1:@PORT@>
    ServerName one.test
    WSGIScriptAlias /app @APPS@/b.wsgi
    WSGIScriptAlias /x @APPS@/c.wsgi
    WSGIScriptAlias /x/y @APPS@/never.wsgi
</VirtualHost>
<VirtualHost 127.0.0.1:@PORT@>
    ServerName two.test
</VirtualHost>
<VirtualHost 127.0.0.1:@PORT@>
    ServerName three.test
    WSGIScriptAlias / @APPS@/d.wsgi
</VirtualHost>
"""

# (Host, URL) -> 'script|SCRIPT_NAME|PATH_INFO', as mod_wsgi 4.9.4 answers.
VHOST_EXPECTED = [
    # A vhost's own aliases come first (even before a more specific main-server
    # alias such as /app/special), then the main server's; within one server
    # the first matching alias in config order wins (/x before /x/y).
    ('one.test', '/', 'a||/'),
    ('one.test', '/app', 'b|/app|'),
    ('one.test', '/app/z', 'b|/app|/z'),
    ('one.test', '/app/special/q', 'b|/app|/special/q'),
    ('one.test', '/x/y/z', 'c|/x|/y/z'),
    ('one.test', '/other', 'a||/other'),
    # No aliases of its own: the main server's, in their config order (/ comes
    # before /app, so /app goes to a.wsgi; /app/special comes before /).
    ('two.test', '/', 'a||/'),
    ('two.test', '/app', 'a||/app'),
    ('two.test', '/app/z', 'a||/app/z'),
    ('two.test', '/app/special/q', 's|/app/special|/q'),
    ('two.test', '/x/y/z', 'a||/x/y/z'),
    # Its own / catches everything before any main-server alias.
    ('three.test', '/', 'd||/'),
    ('three.test', '/app', 'd||/app'),
    ('three.test', '/app/special/q', 'd||/app/special/q'),
    # An unknown Host goes to the first vhost for the address (Apache's rule).
    ('unknown.test', '/app/z', 'b|/app|/z'),
    ('unknown.test', '/x/y', 'c|/x|/y'),
]


def test_vhost_script_alias_precedence(start_apache):
    a = start_apache(VHOSTS, mpm=MPMS[0], name='vhosts')
    for name in ('a', 'b', 'c', 'd', 's', 'never'):
        write(os.path.join(a.apps, name + '.wsgi'), 'NAME = %r\n' % name + NAMED_APP)
    got = []
    for host, url, _ in VHOST_EXPECTED:
        r = a.get(url, headers={'Host': host})
        got.append((host, url, r.text if r.status == 200 else 'status %d' % r.status))
    assert got == VHOST_EXPECTED
    a.stop()


# --- .htaccess: the OR_FILEINFO directives

HTACCESS_APP = """import json
VERSION = %d
def report(name, environ, start_response):
    body = environ['wsgi.input'].read()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps({'callable': name, 'auth': environ.get('HTTP_AUTHORIZATION'),
                        'len': len(body), 'version': VERSION}).encode()]
def application(environ, start_response):
    return report('application', environ, start_response)
def other(environ, start_response):
    return report('other', environ, start_response)
"""

HTACCESS_CONF = """
WSGIScriptAlias /fileinfo/ @APPS@/fileinfo/
WSGIScriptAlias /none/ @APPS@/none/
WSGIScriptAlias /plain/ @APPS@/plain/
WSGIScriptAlias /bad/ @APPS@/bad/
WSGIScriptAlias /authconfig/ @APPS@/authconfig/
<Directory @APPS@/fileinfo>
    AllowOverride FileInfo
</Directory>
<Directory @APPS@/plain>
    AllowOverride FileInfo
</Directory>
<Directory @APPS@/bad>
    AllowOverride FileInfo
</Directory>
<Directory @APPS@/none>
    AllowOverride None
</Directory>
<Directory @APPS@/authconfig>
    AllowOverride AuthConfig
</Directory>
"""

HTACCESS = ('WSGIPassAuthorization On\nWSGICallableObject other\nWSGIChunkedRequest On\n'
            'WSGIScriptReloading Off\n')
AUTH = 'Basic dXNlcjpwYXNz'


def test_htaccess_fileinfo_directives(start_apache):
    a = start_apache(HTACCESS_CONF, mpm=MPMS[0], name='htaccess')
    now = time.time()
    for d, htaccess in [('fileinfo', HTACCESS),
                        ('none', HTACCESS + 'WSGIPassAuthorization not-even-valid\n'),  # never read
                        ('plain', None),
                        ('bad', 'WSGIPassAuthorization maybe\n'),
                        ('authconfig', None)]:
        os.makedirs(os.path.join(a.apps, d))
        os.chmod(os.path.join(a.apps, d), 0o755)
        write(os.path.join(a.apps, d, 'app.wsgi'), HTACCESS_APP % 1, mtime=now - 100)
        if htaccess:
            write(os.path.join(a.apps, d, '.htaccess'), htaccess)

    def get(d):
        r = a.get('/%s/app.wsgi' % d, headers={'Authorization': AUTH})
        assert r.status == 200, (d, r, a.error_log()[-2000:])
        return json.loads(r.body)

    def post_chunked(d):
        out = a.raw(b'POST /%s/app.wsgi HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                    b'Connection: close\r\n\r\n' % d.encode() + chunked([b'abc', b'defg']))
        status, _, body = split_response(out)
        return status, body

    expected = {  # directory -> (callable, Authorization seen, chunked status)
        'fileinfo': ('other', AUTH, b'HTTP/1.1 200 OK'),
        'none': ('application', None, b'HTTP/1.1 411 Length Required'),
        'plain': ('application', None, b'HTTP/1.1 411 Length Required'),
    }
    for d, (callable_, auth, chunked_status) in expected.items():
        e = get(d)
        assert (e['callable'], e['auth'], e['version']) == (callable_, auth, 1), d
        status, body = post_chunked(d)
        assert status == chunked_status, (d, status, body[:200])
        if status.endswith(b'200 OK'):
            assert json.loads(body)['len'] == 7
        # WSGIScriptReloading Off in .htaccess: a changed script is not reloaded.
        write(os.path.join(a.apps, d, 'app.wsgi'), HTACCESS_APP % 2, mtime=now - 50)
        assert get(d)['version'] == (1 if d == 'fileinfo' else 2), d

    # A bad value: Apache's usual .htaccess error (500, a log line naming the
    # file and the directive); the child goes on serving.
    children = a.children()
    assert a.get('/bad/app.wsgi').status == 500
    assert re.search(r'/bad/\.htaccess: WSGIPassAuthorization .*(On|Off)', a.error_log()), a.error_log()[-2000:]
    assert get('plain')['callable'] == 'application'
    assert set(children) <= set(a.children())  # the child that answered 500 is still there

    # They are FileInfo directives: with AllowOverride AuthConfig each is refused.
    for directive in HTACCESS.splitlines():
        write(os.path.join(a.apps, 'authconfig', '.htaccess'), directive + '\n')
        assert a.get('/authconfig/app.wsgi').status == 500, directive
        name = directive.split()[0]
        assert a.wait_for_log('/authconfig/.htaccess: %s not allowed here' % name), name
    assert_no_crash(a)
    a.stop()


# --- WSGIPythonHome that is not a Python installation

@pytest.mark.parametrize('mpm', MPMS)
def test_python_that_cannot_initialise_gives_500_per_request(start_apache, public_tmp, mpm):
    home = public_tmp / 'not-a-python'
    home.mkdir()
    os.chmod(home, 0o755)
    a = start_apache('WSGIPythonHome %s\nWSGIScriptAlias /hello @APPS@/hello.wsgi\n'
                     'WSGIScriptAlias /env @APPS@/env.wsgi\n' % home, mpm=mpm, name='nopython')
    write(os.path.join(a.apps, 'static.txt'), 'static\n')
    children = a.children()
    paths = ['/hello', '/env', '/hello', '/env', '/hello/sub', '/env']
    for p in paths:
        assert a.get(p).status == 500, p
    assert a.get('/apps/static.txt').body == b'static\n'  # the rest of the server works
    log = a.error_log()
    request_lines = [l for l in log.splitlines() if '[wsgi_rs:' in l and '[client ' in l]
    # Two lines per request: mod_wsgi 6's and ours with the reason.
    assert len(request_lines) == 2 * len(paths), '\n'.join(request_lines)
    for script in ('hello', 'env'):
        n = sum(1 for p in paths if p.startswith('/' + script))
        f = '%s/%s.wsgi' % (a.apps, script)
        line = ("[script %s] WSGI0210: Embedded mode of mod_wsgi cannot be used as Python was not "
                "initialised in this process." % f)
        assert sum(1 for l in request_lines if l.endswith(line)) == n, '\n'.join(request_lines)
        line = "Cannot serve WSGI script '%s': Python could not be initialised: " % f
        assert sum(1 for l in request_lines if line in l) == n, '\n'.join(request_lines)
    assert 'WSGI0001: Python initialisation failed in Apache child process; Python based handlers ' \
        'will not be available.' in log
    assert_no_crash(a)
    assert set(children) <= set(a.children())  # no child died
    a.stop()


# --- One server for LimitRequestBody and SetEnv

EDGE_CONF = """
WSGIScriptAlias /limit @APPS@/edge.wsgi
<Location /limit>
    LimitRequestBody 1000
    WSGIChunkedRequest On
</Location>
WSGIScriptAlias /setenv @APPS@/edge.wsgi
<Location /setenv>
    SetEnv HTTP_X_FOO fromsetenv
</Location>
"""

edge = server_fixture(EDGE_CONF, mpms=MPMS[:1])


def app_log(apache, op):
    """The lines edge.wsgi logged for op, without the prefix."""
    mark = 'edge app: %s ' % op
    return [l.split(mark, 1)[1] for l in apache.error_log().splitlines() if mark in l]


def test_limit_request_body_with_content_length_never_calls_the_app(edge):
    before = len(app_log(edge, '/read-swallow'))
    r = edge.post('/limit/read-swallow', b'x' * 5000)
    assert r.status == 413
    # Under the limit the same URL reaches the app (and its log lines appear).
    r = edge.post('/limit/read-swallow', b'x' * 500)
    assert (r.status, r.body) == (200, b'complete body of 500 bytes')
    assert app_log(edge, '/read-swallow')[before:] == ['called with CONTENT_LENGTH=500', 'complete body of 500 bytes']


@pytest.mark.parametrize('op', ['/read', '/read-swallow'])
def test_limit_request_body_chunked_gives_a_read_error_not_a_short_body(edge, op):
    """Over the limit a chunked body is cut by Apache's input filter: the app
    gets OSError after at most the limit, never a complete (truncated) body,
    and the client gets 413, also when the app swallows the error and answers
    200 (as with mod_wsgi 4.9.4)."""
    before = len(app_log(edge, op))
    out = edge.raw(b'POST /limit%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                   b'Connection: close\r\n\r\n' % op.encode() + chunked([b'y' * 500] * 10))
    status, head, _ = split_response(out)
    assert status == b'HTTP/1.1 413 Request Entity Too Large', out[:300]
    assert b'complete body' not in out
    lines = app_log(edge, op)[before:]
    assert lines[0] == 'called with CONTENT_LENGTH=None', lines
    assert not any(l.startswith('complete body') for l in lines), lines
    m = re.match(r'read error after (\d+) bytes: OSError: ', lines[1])
    assert m and int(m.group(1)) <= 1000, lines
    assert 'LimitRequestBody' in lines[1], lines  # says why, not "client closed"
    # A chunked body under the limit is read completely.
    out = edge.raw(b'POST /limit%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                   b'Connection: close\r\n\r\n' % op.encode() + chunked([b'y' * 300] * 3))
    assert split_response(out)[::2] == (b'HTTP/1.1 200 OK', b'complete body of 900 bytes')
    assert_no_crash(edge)


# What mod_wsgi 4.9.4 puts in environ['HTTP_X_FOO'] with `SetEnv HTTP_X_FOO
# fromsetenv`: the request header replaces the SetEnv value (ap_add_common_vars
# overlays the headers onto subprocess_env), decoded as Latin-1.
SETENV_CASES = [
    ('header-latin1', b'X-Foo: fromheader\xe9\r\n', 'fromheader\xe9'),
    ('repeated-header', b'X-Foo: one\r\nX-Foo: two\r\n', 'one, two'),
    ('no-header', b'', 'fromsetenv'),
]


@pytest.mark.parametrize('headers,expected', [c[1:] for c in SETENV_CASES], ids=[c[0] for c in SETENV_CASES])
def test_setenv_and_request_header_collision_as_mod_wsgi(edge, headers, expected):
    out = edge.raw(b'GET /setenv/x-foo HTTP/1.1\r\nHost: x\r\n' + headers + b'Connection: close\r\n\r\n')
    status, _, body = split_response(out)
    assert status == b'HTTP/1.1 200 OK'
    assert body.decode('ascii') == ascii(expected)


# --- HTTP/2 (h2c, prior knowledge) through mod_http2

H2_CONF = """
Protocols h2c http/1.1
WSGIScriptAlias /input @APPS@/input.wsgi
WSGIScriptAlias /chunked @APPS@/input.wsgi
<Location /chunked>
    WSGIChunkedRequest On
</Location>
WSGIScriptAlias /edge @APPS@/edge.wsgi
WSGIScriptAlias /r @APPS@/response.wsgi
"""


def curl_http2_missing():
    curl = shutil.which('curl')
    if not curl:
        return 'curl is not installed (apt-get install -y curl)'
    out = subprocess.run([curl, '--version'], capture_output=True, text=True).stdout
    features = next((l for l in out.splitlines() if l.startswith('Features:')), '')
    if 'HTTP2' not in features.split():
        return 'this curl has no HTTP/2 support: %s' % features
    return None


@pytest.fixture(scope='module')
def h2(start_apache):
    reason = curl_http2_missing()
    if reason:
        pytest.skip(reason)
    a = start_apache(H2_CONF, mpm='event', modules=['http2'], name='http2')
    yield a
    a.stop()


def curl_h2(apache, path, *args, out=None):
    """-> (status, http_version, body) of one request with curl --http2-prior-knowledge."""
    out = out or os.path.join(apache.dir, 'curl.out')
    p = subprocess.run(['curl', '-sS', '--http2-prior-knowledge', '-o', out, '-w', '%{http_code} %{http_version}',
                        *args, 'http://127.0.0.1:%d%s' % (apache.port, path)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, (p.returncode, p.stderr, apache.error_log()[-2000:])
    status, version = p.stdout.split()
    with open(out, 'rb') as f:
        return int(status), version, f.read()


def test_http2_get(h2):
    assert curl_h2(h2, '/r/list') == (200, '2', b'abc')
    assert curl_h2(h2, '/r/status')[:2] == (418, '2')


def test_http2_post_body_through_wsgi_input(h2):
    body = bytes(range(256)) * 1200 + b'tail'
    path = os.path.join(h2.dir, 'post.bin')
    with open(path, 'wb') as f:
        f.write(body)
    expect = {'len': len(body), 'sha256': hashlib.sha256(body).hexdigest(), 'again': 0}
    status, version, out = curl_h2(h2, '/input/read', '--data-binary', '@' + path)
    assert (status, version, json.loads(out)) == (200, '2', expect)
    # Without a Content-Length (an HTTP/2 body is framed by the stream): read
    # completely where WSGIChunkedRequest is On.
    status, version, out = curl_h2(h2, '/chunked/read', '-H', 'Transfer-Encoding: chunked', '--data-binary', '@' + path)
    assert (status, version, json.loads(out)) == (200, '2', expect)


def test_http2_streaming_generator(h2):
    status, version, body = curl_h2(h2, '/edge/chunks?50')
    assert (status, version) == (200, '2')
    assert body == b''.join(b'chunk %03d ' % i + b'z' * 1000 + b'\n' for i in range(50))
    # The first part arrives while the generator is still paused (not buffered).
    start = time.time()
    p = subprocess.Popen(['curl', '-sS', '-N', '--http2-prior-knowledge',
                          'http://127.0.0.1:%d/edge/slow' % h2.port], stdout=subprocess.PIPE)
    try:
        first = p.stdout.readline()
        first_at = time.time() - start
        rest = p.stdout.read()
    finally:
        p.wait(timeout=15)
    assert first == b'first part\n'
    assert first_at < 1.2, first_at
    assert rest == b'second part\n'
    assert p.returncode == 0

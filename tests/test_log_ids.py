"""mod_wsgi 6's message IDs (WSGI####) and texts in the error log: log
monitoring written for mod_wsgi 6.0.5 must match our lines unchanged. The
expected lines were compared with the real mod_wsgi 6.0.5 running the same
scripts (tests/apps/logids) in the same configuration."""
import base64
import os
import re
import time

import pytest

from conftest import server_fixture
from harness import PY_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ID = re.compile(r'WSGI\d{4}')

CONF = '''
WSGIScriptAlias /p/ @APPS@/logids/
WSGIScriptAlias /g/ @APPS@/logids/
<Location /g/>
WSGIApplicationGroup %{GLOBAL}
</Location>
WSGIScriptAlias /npi/ @APPS@/logids/
<Location /npi/>
AcceptPathInfo Off
</Location>
Alias /cgi/ @APPS@/logids/cgi/
<Directory @APPS@/logids/cgi>
SetHandler wsgi-script
Options -ExecCGI
</Directory>
'''

server = server_fixture(CONF, mpms=['event'])


def test_every_id_in_the_source_has_a_readme_row_and_back():
    in_src = set()
    for dirpath, _, files in os.walk(os.path.join(ROOT, 'src')):
        for name in files:
            if name.endswith(('.rs', '.py', '.c', '.h')):
                with open(os.path.join(dirpath, name), encoding='utf-8') as f:
                    in_src.update(ID.findall(f.read()))
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    rows = re.findall(r'^\| (WSGI\d{4}) \|', readme, re.M)
    assert len(rows) == len(set(rows)), 'one row per ID'
    assert rows == sorted(rows), 'rows sorted by ID'
    assert in_src - set(rows) == set(), 'IDs without a README row'
    assert set(rows) - in_src == set(), 'README rows for IDs we do not emit'


# "[time] [wsgi_rs:error] [pid N:tid M] [client a:p] " (or "[remote a:p] ").
PREFIX = re.compile(r'^\[[^\]]*\] \[[^\]]*\] \[pid [^\]]*\] (\[(client|remote) [^\]]*\] )?')


def messages(a, since=0):
    return [PREFIX.sub('', line) for line in a.error_log()[since:].splitlines()]


def wait_for(a, since, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [m for m in messages(a, since) if text in m]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError('%r not logged: %s' % (text, a.error_log()[since:][-3000:]))


def request(a, path, expect=None):
    since = len(a.error_log())
    r = a.get(path)
    if expect is not None:
        assert r.status == expect, (path, r.status)
    return since


def context(a, url):
    """How mod_wsgi 6 names the interpreter of `url` ('' : %{GLOBAL})."""
    interp = "sub-interpreter '127.0.0.1:%d|%s'" % (a.port, url) if url else 'main interpreter'
    return interp + (" of daemon process 'testd'" if a.mode == 'daemon' else ' in embedded mode')


def script(a, name):
    return os.path.join(a.apps, 'logids', name)


@pytest.mark.parametrize('prefix', ['/p', '/g'], ids=['sub-interpreter', 'main-interpreter'])
@pytest.mark.parametrize('name,kind,last', [
    ('exc.wsgi', 'ValueError', 'ValueError: boom'),  # WSGI0174
    ('sysexit.wsgi', 'SystemExit', 'SystemExit: 3'),  # WSGI0175: ignored, the process goes on
])
def test_app_exception_header(server, prefix, name, kind, last):
    a = server
    since = request(a, '%s/%s' % (prefix, name), 500)
    wait_for(a, since, last)
    got = messages(a, since)
    header = exception_header(a, name, kind, '/p/' + name if prefix == '/p' else '')
    # The traceback follows, ending with the exception.
    assert got.index(header) < got.index(last), got
    assert a.get('/p/ok.wsgi').status == 200


def test_missing_callable_is_wsgi0089(server):
    a = server
    since = request(a, '/p/nocall.wsgi', 404 if a.mode == 'embedded' else None)
    f = script(a, 'nocall.wsgi')
    line = ("[script %s] WSGI0089: Target WSGI script '%s' does not contain WSGI application "
            "'application'." % (f, f))
    assert wait_for(a, since, 'WSGI0089') == [line]


def exception_header(a, name, kind, url=None):
    """mod_wsgi 6's line before the traceback of a `kind` exception from
    tests/apps/logids/`name` in the interpreter of `url` (default /p/`name`;
    '': %{GLOBAL})."""
    f = script(a, name)
    ctx = context(a, '/p/' + name if url is None else url)
    if kind == 'SystemExit':
        return ("WSGI0175: [script %s] SystemExit exception raised by WSGI script '%s' for %s; ignored."
                % (f, f, ctx))
    return "WSGI0174: [script %s] %s exception raised processing WSGI script '%s' for %s." % (f, kind, f, ctx)


@pytest.mark.parametrize('name,status,last,first,kind', [
    ('importerr.wsgi', 500, 'RuntimeError: at import',
     "[script {f}] WSGI0109: Unable to execute Python script file '{f}'.", 'RuntimeError'),
    # CPython's own wording: 3.10 reworded the parser's messages.
    ('syntax.wsgi', 500, "SyntaxError: expected ':'" if PY_VERSION >= (3, 10) else 'SyntaxError: invalid syntax',
     "[script {f}] WSGI0105: Could not read or compile WSGI script '{f}' for {ctx}.", 'SyntaxError'),
    ('exitimport.wsgi', 500, 'SystemExit: 2',
     "[script {f}] WSGI0107: SystemExit exception raised when doing exec of Python script file '{f}'.",
     'SystemExit'),
    ('closeattr.wsgi', 200, "KeyError: 'close lookup'",
     "[script {f}] WSGI0194: Lookup of 'close' attribute on WSGI response iterable raised an exception.",
     'KeyError'),
])
def test_failure_line_then_exception_header(server, name, status, last, first, kind):
    """What failed (loading the script, or getting close()), then the
    exception's header line, then its traceback."""
    a = server
    since = request(a, '/p/' + name, status)
    wait_for(a, since, last)
    got = messages(a, since)
    first = first.format(f=script(a, name), ctx=context(a, '/p/' + name))
    header = exception_header(a, name, kind)
    assert got.index(first) + 1 == got.index(header) < got.index(last), got
    if name == 'syntax.wsgi':  # as mod_wsgi 6: no loader frames, just the compiler's report
        assert 'Traceback (most recent call last):' not in got[got.index(header):]


def test_load_line(server):
    a = server
    since = request(a, '/p/load.wsgi', 200)  # its first request
    f = script(a, 'load.wsgi')
    line = "Loading WSGI script '%s' into %s." % (f, context(a, '/p/load.wsgi'))
    wait_for(a, since, line)


def test_event_callback_exception_is_wsgi0112(server):
    a = server
    since = request(a, '/p/event.wsgi', 200)
    wait_for(a, since, "WSGI0112: LookupError exception raised by event callback for 'request_started'.")


@pytest.mark.parametrize('path,status,message', [
    ('/cgi/ok.wsgi', 403, 'WSGI0134: Options ExecCGI is off in this directory.'),
    ('/p/missing.wsgi', 404, 'WSGI0135: Target WSGI script not found or unable to stat.'),
    ('/p/adir/', 403, 'WSGI0136: Attempt to invoke directory as WSGI application.'),
    ('/npi/ok.wsgi/extra', 404, "WSGI0137: AcceptPathInfo off disallows user's path."),
])
def test_refusals(server, path, status, message):
    a = server
    since = request(a, path, status)
    f = {'/cgi/ok.wsgi': 'cgi/ok.wsgi', '/p/missing.wsgi': 'missing.wsgi', '/p/adir/': 'adir/',
         '/npi/ok.wsgi/extra': 'ok.wsgi'}[path]
    assert wait_for(a, since, message[:9]) == ['[script %s] %s' % (script(a, f), message)]


@pytest.mark.parametrize('te,status,message', [
    ('chunked', 411, 'WSGI0139: Request requires chunked transfer encoding, but support for chunked '
                     'transfer encoding has not been enabled.'),
    ('gzip, chunked', 501, "WSGI0138: Unexpected value for Transfer-Encoding of 'gzip, chunked' "
                           "supplied. Only 'chunked' supported."),
])
def test_transfer_encoding_refusals(server, te, status, message):
    a = server
    since = len(a.error_log())
    out = a.raw(('POST /p/ok.wsgi HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: %s\r\n'
                 '\r\n5\r\nhello\r\n0\r\n\r\n' % te).encode())
    assert out.startswith(b'HTTP/1.1 %d' % status), out[:100]
    assert wait_for(a, since, message[:9]) == ['[script %s] %s' % (script(a, 'ok.wsgi'), message)]


def test_restricted_embedded_mode_is_wsgi0143(start_apache):
    a = start_apache('WSGIRestrictEmbedded On\n' + CONF, mpm='event', name='logids-restrict')
    a.mode = 'embedded'
    since = request(a, '/p/ok.wsgi', 500)
    line = ('[script %s] WSGI0143: Embedded mode of mod_wsgi disabled by runtime configuration.'
            % script(a, 'ok.wsgi'))
    assert wait_for(a, since, 'WSGI0143') == [line]
    a.stop()


AUTH_CONF = '''
WSGIScriptAliasMatch ^/(basic|staff|access) @APPS@/auth_app.wsgi
<Location /basic>
AuthType Basic
AuthName "wsgi test"
AuthBasicProvider wsgi
WSGIAuthUserScript @APPS@/auth_user.wsgi
Require valid-user
</Location>
<Location /staff>
AuthType Basic
AuthName "wsgi test"
AuthBasicProvider wsgi
WSGIAuthUserScript @APPS@/auth_user.wsgi
WSGIAuthGroupScript @APPS@/auth_group.wsgi
Require wsgi-group nobody "staff"
</Location>
<Location /access>
WSGIAccessScript @APPS@/auth_access.wsgi
</Location>
'''


def test_auth_script_lines(start_apache):
    """The auth hooks' lines, as mod_wsgi 6.0.5 logs them for the same
    scripts (tests/apps/auth_*.wsgi)."""
    a = start_apache(AUTH_CONF, mpm='event', name='logids-auth',
                     modules=['auth_basic', 'authn_core', 'authz_user'])
    app = os.path.join(a.apps, 'auth_app.wsgi')

    def basic(user, password):
        return {'Authorization': 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()}

    cases = [
        ('/basic', basic('boom', 'x'), 500,
         "WSGI0174: [script %s] RuntimeError exception raised processing WSGI script '%s' for main "
         "interpreter in embedded mode." % (app, os.path.join(a.apps, 'auth_user.wsgi'))),
        ('/basic', basic('odd', 'x'), 500,
         '[script %s] WSGI0177: Basic auth provider must return True, False, None or user name as '
         'string.' % app),
        ('/staff', basic('bob', 'hunter2'), 401,
         "[script %s] WSGI0060: Authorization of user 'bob' to access '/staff' failed. User is not a "
         "member of designated groups." % app),
        ('/staff', basic('carol', 'pw'), 401,
         "[script %s] WSGI0059: Authorization of user 'carol' to access '/staff' failed. User is not a "
         "member of any groups." % app),
        ('/access', {'X-Access': 'bad'}, 403,
         "[script %s] WSGI0055: Result returned from 'allow_access' in '%s' must be a boolean or None."
         % (app, os.path.join(a.apps, 'auth_access.wsgi'))),
        ('/access', {'X-Access': 'deny'}, 403,
         "[script %s] WSGI0057: Client denied by server configuration: '%s'." % (app, app)),
    ]
    for path, headers, status, line in cases:
        since = len(a.error_log())
        assert a.get(path, headers=headers).status == status, (path, headers)
        assert line in wait_for(a, since, line)  # the whole message, exactly
    a.stop()

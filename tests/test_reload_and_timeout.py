"""mod_wsgi 6's script reloading for WSGI scripts (reload_required(), a lost
__mtime__, a changed file; WSGIScriptReloading Off) and mod_wsgi.RequestTimeout
raised by an application (504, one info line, no traceback), in embedded and
daemon mode. Compared with mod_wsgi 6.0.5 (same probes, same results)."""
import http.client
import json
import os
import time

from conftest import ONE_PREFORK_CHILD, server_fixture

CONF = ONE_PREFORK_CHILD + """
WSGIScriptAlias /r/ @DIR@/reload/
WSGIScriptAlias /n/ @DIR@/noreload/
<Directory @DIR@/reload>
    Require all granted
</Directory>
<Directory @DIR@/noreload>
    Require all granted
    WSGIScriptReloading Off
</Directory>
"""

APP = '''
import os, sys, json
import mod_wsgi
HERE = os.path.dirname(__file__)
NAME = os.path.basename(__file__)
VERSION = open(os.path.join(HERE, NAME + '.version')).read().strip()


def reload_required(resource):
    with open(os.path.join(HERE, NAME + '.asked'), 'a') as f:
        f.write(resource + '\\n')
    mode = open(os.path.join(HERE, NAME + '.mode')).read().strip()
    if mode == 'raise':
        raise ValueError('reload hook failed')
    return mode == 'yes'


class Closing:
    def __iter__(self):
        return iter([b'ok'])

    def close(self):
        raise mod_wsgi.RequestTimeout()


def application(environ, start_response):
    op = environ['PATH_INFO']
    if op == '/delmtime':
        del sys.modules[__name__].__mtime__
    elif op == '/timeout':
        raise mod_wsgi.RequestTimeout()
    elif op == '/timeout-after-start':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Gone', '1')])
        raise mod_wsgi.RequestTimeout()
    elif op == '/timeout-in-body':
        def body():
            yield b'part1'
            raise mod_wsgi.RequestTimeout()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return body()
    elif op == '/timeout-in-close':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Closing()
    elif op == '/class':
        t = mod_wsgi.RequestTimeout
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [json.dumps([t.__module__, t.__name__, issubclass(t, BaseException),
                            issubclass(t, Exception)]).encode()]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%s %d' % (VERSION, os.getpid())).encode()]
'''

apache = server_fixture(CONF)


class Script:
    """One WSGI script of the test, with its version and hook-mode files
    (writable by the processes that run it)."""

    def __init__(self, a, name, folder='reload'):
        self.a = a
        self.dir = os.path.join(a.dir, folder)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.path = os.path.join(self.dir, name)
        self.url = '/%s/%s' % ('r' if folder == 'reload' else 'n', name)
        self.set('version', 'v1')
        self.set('mode', 'no')
        self.set('asked', '')
        with open(self.path, 'w') as f:
            f.write(APP)
        os.chmod(self.path, 0o644)

    def set(self, what, value):
        p = '%s.%s' % (self.path, what)
        with open(p, 'w') as f:
            f.write(value)
        os.chmod(p, 0o666)

    def asked(self):
        with open(self.path + '.asked') as f:
            return f.read().split()

    def get(self, op=''):
        r = self.a.get(self.url + op)
        assert r.status == 200, (r, self.a.error_log()[-3000:])
        version, pid = r.body.decode().split()
        return version, int(pid)


def test_reload_required_true_executes_the_script_again(apache):
    s = Script(apache, 'yes.wsgi')
    assert s.get()[0] == 'v1'
    s.set('version', 'v2')
    version, pid = s.get()
    assert version == 'v1'  # asked, said no: the loaded module serves
    assert s.asked() == [s.path]  # asked with the script's path, once per request after loading
    s.set('mode', 'yes')
    version, new_pid = s.get()
    assert version == 'v2'
    if apache.mode == 'daemon':
        # As for a changed script: the daemon process restarts.
        assert new_pid != pid
        assert apache.wait_for_log("due to modification of script '%s'" % s.path)
    else:
        assert new_pid == pid
        time.sleep(0.3)
        assert [line for line in apache.error_log().splitlines()
                if 'Reloading' in line and s.path in line]


def test_reload_required_raising_is_logged_and_the_old_code_serves(apache):
    s = Script(apache, 'raising.wsgi')
    version, pid = s.get()
    assert version == 'v1'
    s.set('mode', 'raise')
    s.set('version', 'v2')
    for _ in range(3):
        assert s.get() == ('v1', pid)
    assert apache.wait_for_log('ValueError: reload hook failed')
    assert apache.wait_for_log("raise ValueError('reload hook failed')")  # the traceback
    # Logged in the request's context, as mod_wsgi does.
    line = [x for x in apache.error_log().splitlines() if 'ValueError: reload hook failed' in x][0]
    assert ' 127.0.0.1:' in line, line


def test_a_deleted_mtime_reloads_the_script(apache):
    s = Script(apache, 'mtime.wsgi')
    version, pid = s.get()
    s.set('version', 'v2')
    assert s.get('/delmtime')[0] == 'v1'  # deleted while serving
    version, new_pid = s.get()
    assert version == 'v2'
    assert (new_pid != pid) == (apache.mode == 'daemon')


def test_a_changed_file_still_reloads(apache):
    s = Script(apache, 'changed.wsgi')
    assert s.get()[0] == 'v1'
    s.set('version', 'v2')
    st = os.stat(s.path)
    os.utime(s.path, (st.st_atime, st.st_mtime + 5))
    assert s.get()[0] == 'v2'


def test_script_reloading_off_disables_all_of_it(apache):
    s = Script(apache, 'off.wsgi', folder='noreload')
    assert s.get()[0] == 'v1'
    s.set('version', 'v2')
    s.set('mode', 'yes')
    assert s.get()[0] == 'v1'
    assert s.get('/delmtime')[0] == 'v1'
    assert s.get()[0] == 'v1'
    st = os.stat(s.path)
    os.utime(s.path, (st.st_atime, st.st_mtime + 5))
    assert s.get()[0] == 'v1'
    assert s.asked() == []  # reload_required is not asked


def test_request_timeout_is_mod_wsgis_class(apache):
    s = Script(apache, 'cls.wsgi')
    r = apache.get(s.url + '/class')
    assert json.loads(r.body) == ['mod_wsgi', 'RequestTimeout', True, False]


def new_log(apache, before):
    time.sleep(0.3)
    return apache.error_log()[before:]


RECOVERED = 'Request interrupted by RequestTimeout; thread recovered.'
TRUNCATED = 'Request interrupted by RequestTimeout after headers sent; response truncated.'


def test_request_timeout_raised_before_the_headers_gives_504(apache):
    s = Script(apache, 'timeout.wsgi')
    _, pid = s.get()
    before = len(apache.error_log())
    for op in ('/timeout', '/timeout-after-start'):
        r = apache.get(s.url + op)
        assert (r.status, r.reason, r.body) == (504, 'Gateway Timeout', b''), r
        assert r.header('X-Gone') is None  # what start_response() recorded is dropped
    log = new_log(apache, before)
    assert log.count(RECOVERED) == 2, log
    assert 'Traceback' not in log and 'Exception occurred' not in log, log
    assert s.get() == ('v1', pid)  # the same process serves on


def test_request_timeout_after_the_headers_truncates(apache):
    s = Script(apache, 'truncated.wsgi')
    _, pid = s.get()
    before = len(apache.error_log())
    conn = http.client.HTTPConnection('127.0.0.1', apache.port, timeout=10)
    conn.request('GET', s.url + '/timeout-in-body')
    r = conn.getresponse()
    assert r.status == 200
    try:
        body = r.read()
    except http.client.IncompleteRead as e:
        body = e.partial
    conn.close()
    assert body == b'part1'
    log = new_log(apache, before)
    assert TRUNCATED in log and 'Traceback' not in log, log
    assert s.get() == ('v1', pid)


def test_request_timeout_from_close_is_dropped(apache):
    s = Script(apache, 'closing.wsgi')
    s.get()
    before = len(apache.error_log())
    r = apache.get(s.url + '/timeout-in-close')
    assert (r.status, r.body) == (200, b'ok')
    log = new_log(apache, before)
    assert 'RequestTimeout' not in log and 'Traceback' not in log, log

"""Application groups: one Python sub-interpreter per group in each process,
%{GLOBAL} for the main interpreter, mod_wsgi's expansions, embedded and
daemon."""
import http.client
import json
import os
import subprocess
import time

import pytest

from conftest import MODES, in_mode
from harness import PY_VERSION, PYTHON

CONF = '''
WSGIScriptAlias /a @APPS@/groups.wsgi
WSGIScriptAlias /b @APPS@/groups.wsgi
WSGIScriptAlias /g1 @APPS@/groups.wsgi application-group=%{GLOBAL}
WSGIScriptAlias /g2 @APPS@/groups.wsgi application-group=%{GLOBAL}
WSGIScriptAlias /named @APPS@/groups.wsgi application-group=shop
WSGIScriptAlias /server @APPS@/groups.wsgi
WSGIScriptAlias /host @APPS@/groups.wsgi
WSGIScriptAlias /env @APPS@/groups.wsgi
WSGIScriptAlias /envglobal @APPS@/groups.wsgi
WSGIScriptAlias /Mixed @APPS@/groups.wsgi
<Location /server>
    WSGIApplicationGroup %{SERVER}
</Location>
<Location /host>
    WSGIApplicationGroup %{HOST}
</Location>
<Location /env>
    SetEnv APPGROUP billing
    WSGIApplicationGroup %{ENV:APPGROUP}
</Location>
<Location /envglobal>
    SetEnv APPGROUP %{GLOBAL}
    WSGIApplicationGroup %{ENV:APPGROUP}
</Location>
'''


class Client:
    """One keep-alive connection: every request reaches the same process
    (Apache's child, which in daemon mode proxies to the one daemon)."""

    def __init__(self, a):
        self.a = a
        self.conn = http.client.HTTPConnection('127.0.0.1', a.port, timeout=20)

    def get(self, path, host=None, status=200):
        headers = {'Host': host} if host else {}
        self.conn.request('GET', path, headers=headers)
        r = self.conn.getresponse()
        body = r.read()
        assert r.status == status, (path, r.status, body[:300], self.a.error_log()[-3000:])
        return json.loads(body) if status == 200 else body

    def close(self):
        self.conn.close()


@pytest.fixture(params=MODES)
def groups(request, start_apache):
    a = start_apache(in_mode(CONF, request.param), mpm='event', name='groups-' + request.param)
    a.mode = request.param
    c = Client(a)
    yield a, c
    c.close()
    a.stop()


def test_each_group_has_its_own_interpreter(groups):
    a, c = groups
    here = '127.0.0.1:%d' % a.port
    ra1, ra2, rb = c.get('/a'), c.get('/a'), c.get('/b')
    assert ra1['environ_group'] == ra1['module_group'] == here + '|/a'
    assert rb['environ_group'] == rb['module_group'] == here + '|/b'
    assert ra1['pid'] == rb['pid']
    # Separate sys.modules and module globals: /b does not see /a's hits.
    assert ra1['modules_id'] == ra2['modules_id'] != rb['modules_id']
    assert (ra1['hits'], ra2['hits'], rb['hits']) == (1, 2, 1)
    # %{GLOBAL} is the main interpreter, shared by every app that names it.
    g1, g2 = c.get('/g1'), c.get('/g2')
    assert g1['environ_group'] == g2['environ_group'] == g1['module_group'] == ''
    assert g1['modules_id'] == g2['modules_id'] not in (ra1['modules_id'], rb['modules_id'])
    assert (g1['hits'], g2['hits']) == (1, 2)
    # The same script is a module in each interpreter, loaded once in each.
    assert ra2['loads'] == rb['loads'] == g2['loads'] == 1
    log = a.error_log()
    assert ("Creating sub-interpreter '%s|/a' in " % here) in log
    assert ("Creating sub-interpreter '%s|/b' in " % here) in log
    assert "Creating sub-interpreter ''" not in log


def test_expansions(groups):
    a, c = groups
    here = '127.0.0.1:%d' % a.port
    assert c.get('/named')['environ_group'] == 'shop'
    assert c.get('/server')['environ_group'] == here
    assert c.get('/host', host='localhost:%d' % a.port)['environ_group'] == 'localhost:%d' % a.port
    assert c.get('/env')['environ_group'] == 'billing'
    # A variable may name another expansion (one level, as with mod_wsgi).
    assert c.get('/envglobal')['environ_group'] == ''
    # %{RESOURCE} keeps SCRIPT_NAME's case (WSGICaseSensitivity On).
    assert c.get('/Mixed/x')['environ_group'] == here + '|/Mixed'
    # Interpreters with the same name are the same interpreter.
    assert c.get('/named')['hits'] == 2


def test_error_paths_and_panics_in_every_interpreter(groups):
    """The helper module is built in each interpreter; its internal
    functions called with anything raise clean errors there, and a panic at
    the Rust boundary is a plain RuntimeError in each (never pyo3's
    process-wide PanicException type)."""
    a, c = groups
    for path in ('/a', '/b', '/g1', '/named'):
        errors = c.get(path + '?hostile')['errors']
        assert all(e and e.startswith(('TypeError', 'ValueError')) for e in errors), errors
        assert errors[0] == 'TypeError: expected a mod_wsgi request context, not int'
        assert errors[1] == 'TypeError: str expected, value of type bytes found'
        panic = c.get(path + '?panic')['panic']
        assert panic == 'builtins.RuntimeError: internal error in mod_wsgi_rs: test hook panic'
    assert c.get('/a')['hits'] > 1


def build_ext(name, dest):
    """Compiles tests/ext/<name>.c for the Python the module links."""
    include = subprocess.check_output(
        [PYTHON, '-c', 'import sysconfig; print(sysconfig.get_paths()["include"])'], text=True).strip()
    suffix = subprocess.check_output(
        [PYTHON, '-c', 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))'], text=True).strip()
    src = os.path.join(os.path.dirname(__file__), 'ext', name + '.c')
    out = os.path.join(dest, name + suffix)
    subprocess.check_call(['cc', '-shared', '-fPIC', '-I', include, src, '-o', out])
    os.chmod(out, 0o755)
    return out


def test_extension_refusing_a_sub_interpreter_is_named(groups):
    a, c = groups
    build_ext('onceonly', a.apps)
    here = '127.0.0.1:%d' % a.port
    c.get('/g1?import=onceonly')
    c.get('/a?import=onceonly', status=500)
    log = a.wait_for_log("Extension module 'onceonly' cannot be loaded in the sub-interpreter "
                         "of application group '%s|/a'" % here)
    assert log
    text = a.error_log()
    assert 'cannot load module more than once per process' in text
    assert "Add 'WSGIApplicationGroup %{GLOBAL}'" in text
    # The process keeps serving, in both interpreters.
    assert c.get('/a')['hits'] >= 1
    assert c.get('/g1?import=onceonly')['environ_group'] == ''


def test_reloaded_script_serves_new_code_in_its_own_group(start_apache, public_tmp):
    """Embedded mode (a daemon restarts on a change instead): each
    interpreter reloads the script for itself, when it next runs it."""
    script = public_tmp / 'reload.wsgi'
    src = (open(os.path.join(os.path.dirname(__file__), 'apps', 'groups.wsgi')).read()
           .replace("sys.path.insert(0, os.path.dirname(__file__))",
                    "sys.path.insert(0, %r)" % os.path.join(os.path.dirname(__file__), 'apps')))
    script.write_text(src)
    os.chmod(script, 0o644)
    a = start_apache('''
WSGIScriptAlias /a %(s)s
WSGIScriptAlias /b %(s)s
<Directory %(d)s>
    Require all granted
</Directory>
''' % {'s': script, 'd': public_tmp}, mpm='event', name='group-reload')
    c = Client(a)
    assert (c.get('/a')['version'], c.get('/b')['version']) == (1, 1)
    time.sleep(1.1)
    script.write_text(src.replace('VERSION = 1', 'VERSION = 2'))
    ra = c.get('/a')
    assert (ra['version'], ra['loads']) == (2, 2)
    assert a.error_log().count('Reloading WSGI script') == 1
    rb = c.get('/b')
    assert (rb['version'], rb['loads']) == (2, 2)
    assert c.get('/a')['loads'] == 2  # no second reload
    assert a.error_log().count('Reloading WSGI script') == 2
    c.close()
    a.stop()


@pytest.mark.parametrize('mode', MODES)
def test_shutdown_runs_atexit_in_every_interpreter(start_apache, mode):
    conf = '''
WSGIScriptAlias /x1 @APPS@/atexit_groups.wsgi
WSGIScriptAlias /x2 @APPS@/atexit_groups.wsgi application-group=shop
WSGIScriptAlias /x3 @APPS@/atexit_groups.wsgi application-group=%{GLOBAL}
WSGIScriptAlias /stuck @APPS@/atexit_groups.wsgi application-group=stuck
'''
    if mode == 'daemon':
        conf = 'WSGIDaemonProcess testd threads=4 shutdown-timeout=2\nWSGIProcessGroup testd\n' + conf
    a = start_apache(conf, mpm='event', name='group-atexit-' + mode)
    c = http.client.HTTPConnection('127.0.0.1', a.port, timeout=10)
    seen = []
    for path in ('/x1', '/x2', '/x3', '/stuck'):
        c.request('GET', path)
        r = c.getresponse()
        assert r.status == 200
        seen.append(r.read().decode())
    c.close()
    here = '127.0.0.1:%d|/x1' % a.port
    assert seen == [here, 'shop', '', 'stuck']
    time.sleep(1)  # see test_lifecycle.test_stop_is_prompt_and_runs_atexit
    took = a.stop()
    assert took < 6, 'stop took %.1fs' % took
    log = a.error_log()
    for group in (here, 'shop', '', 'stuck'):
        assert ('atexit ran in group %r' % group) in log, log[-3000:]
    assert "Threads still running in interpreter 'stuck' at shutdown: forever." in log
    assert 'Segmentation fault' not in log and 'Fatal Python error' not in log


def test_destroy_interpreter_off_skips_exit_work(start_apache):
    """WSGIDestroyInterpreter Off: no atexit callbacks, no waiting for the
    application's threads, as with mod_wsgi."""
    a = start_apache('''
WSGIDestroyInterpreter Off
WSGIScriptAlias /x1 @APPS@/atexit_groups.wsgi
WSGIScriptAlias /stuck @APPS@/atexit_groups.wsgi application-group=stuck
''', mpm='event', name='group-nodestroy')
    c = http.client.HTTPConnection('127.0.0.1', a.port, timeout=10)
    for path in ('/x1', '/stuck'):
        c.request('GET', path)
        assert c.getresponse().read()
    c.close()
    time.sleep(1)
    took = a.stop()
    assert took < 2, 'stop took %.1fs' % took
    log = a.error_log()
    assert 'atexit ran in group' not in log
    assert 'Threads still running' not in log


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open('/proc/%d/status' % pid) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def hammer(a, paths, n, threads=6):
    """n GET requests over keep-alive connections, spread over `paths`; a
    connection the server closed between requests is reopened."""
    import threading
    errors, done = [], []

    def run(k):
        conn = http.client.HTTPConnection('127.0.0.1', a.port, timeout=20)
        count = 0
        try:
            for i in range(n // threads):
                for attempt in range(3):
                    try:
                        conn.request('GET', paths[(i + k) % len(paths)])
                        r = conn.getresponse()
                        r.read()
                        break
                    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                        conn.close()
                        conn = http.client.HTTPConnection('127.0.0.1', a.port, timeout=20)
                else:
                    raise RuntimeError('request %d failed 3 times' % i)
                if r.status != 200:
                    errors.append(r.status)
                count += 1
                if r.getheader('Connection', '').lower() == 'close':
                    conn.close()
                    conn = http.client.HTTPConnection('127.0.0.1', a.port, timeout=20)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            conn.close()
            done.append(count)
    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:10]
    assert sum(done) == (n // threads) * threads


def test_no_growth_over_100k_requests_in_three_groups(start_apache):
    a = start_apache('''
KeepAliveTimeout 5
MaxKeepAliveRequests 0
WSGIScriptAlias /a @APPS@/hello.wsgi
WSGIScriptAlias /b @APPS@/hello.wsgi application-group=shop
WSGIScriptAlias /c @APPS@/hello.wsgi application-group=%{GLOBAL}
''', mpm='event', name='group-growth')
    paths = ['/a', '/b', '/c']
    hammer(a, paths, 10000)
    children = a.children()
    before = rss_kb(children)
    hammer(a, paths, 100000)
    assert a.children() == children, 'a child was replaced'
    after = rss_kb(children)
    assert after - before < 4096, 'RSS grew by %d kB over 100k requests' % (after - before)
    assert a.error_log().count('Creating sub-interpreter') == 2


needs_own_gil = pytest.mark.skipif(
    PY_VERSION < (3, 12),
    reason='WSGIPerInterpreterGIL needs Python 3.12+; the module is built for %d.%d' % PY_VERSION)

OWN_GIL_CONF = '''
WSGIPerInterpreterGIL On
WSGIScriptAlias /one @APPS@/groups.wsgi application-group=one
WSGIScriptAlias /two @APPS@/groups.wsgi application-group=two
WSGIScriptAlias /g1 @APPS@/groups.wsgi application-group=%{GLOBAL}
'''


@needs_own_gil
@pytest.mark.parametrize('mode', MODES)
def test_own_gil_interpreters_serve_side_by_side(start_apache, mode):
    """Two groups with a GIL each, loaded at once from several threads:
    every request is answered by its own interpreter."""
    a = start_apache(in_mode(OWN_GIL_CONF, mode), mpm='event', name='own-gil-' + mode)
    hammer(a, ['/one', '/two', '/g1'], 3000)
    c = Client(a)
    one, two, main = c.get('/one'), c.get('/two'), c.get('/g1')
    assert (one['environ_group'], two['environ_group'], main['environ_group']) == ('one', 'two', '')
    assert len({one['modules_id'], two['modules_id'], main['modules_id']}) == 3
    assert one['hits'] + two['hits'] + main['hits'] > 3
    c.close()
    log = a.error_log()
    assert 'Fatal Python error' not in log and 'Segmentation fault' not in log
    a.stop()


@needs_own_gil
@pytest.mark.parametrize('mode', MODES)
def test_own_gil_refuses_extensions_without_support(start_apache, mode):
    """A single-phase extension loads in a sub-interpreter that shares the
    GIL, and is refused by one with its own GIL, with the advice."""
    conf = OWN_GIL_CONF + '''
<WSGIInterpreterOptions application-group=two>
    WSGIPerInterpreterGIL Off
</WSGIInterpreterOptions>
'''
    a = start_apache(in_mode(conf, mode), mpm='event', name='own-gil-ext-' + mode)
    build_ext('singlephase', a.apps)
    c = Client(a)
    c.get('/one?import=singlephase', status=500)
    assert a.wait_for_log("Extension module 'singlephase' cannot be loaded in the sub-interpreter of "
                          "application group 'one' (it has its own GIL: WSGIPerInterpreterGIL On)")
    assert 'module singlephase does not support loading in subinterpreters' in a.error_log()
    # 'two' shares the GIL (its section turns it off): the module loads there.
    assert c.get('/two?import=singlephase')['environ_group'] == 'two'
    assert c.get('/one')['environ_group'] == 'one'
    c.close()
    a.stop()


@pytest.mark.parametrize('mode', MODES)
def test_scripts_are_preloaded_into_their_groups_interpreter(start_apache, mode):
    """An alias that names both groups literally, and WSGIImportScript, load
    their script into that group's interpreter when the process starts."""
    pg = 'd' if mode == 'daemon' else '%{GLOBAL}'
    conf = ('WSGIDaemonProcess d threads=2\n' if mode == 'daemon' else '') + '''
WSGIScriptAlias /pre @APPS@/groups.wsgi process-group=%(pg)s application-group=pre
WSGIImportScript @APPS@/atexit_groups.wsgi process-group=%(pg)s application-group=imported
''' % {'pg': pg}
    a = start_apache(conf, mpm='event', name='group-preload-' + mode)
    assert a.wait_for_log("Creating sub-interpreter 'pre' in ")  # before any request
    assert a.wait_for_log("Creating sub-interpreter 'imported' in ")
    deadline = time.time() + 10  # each creation line comes before its load line
    while time.time() < deadline and a.error_log().count('Loading WSGI script') < 2:
        time.sleep(0.05)
    assert a.error_log().count('Loading WSGI script') == 2
    c = Client(a)
    r = c.get('/pre')
    c.close()
    assert (r['environ_group'], r['loads']) == ('pre', 1)
    assert a.error_log().count('Loading WSGI script') == 2  # not loaded again
    time.sleep(1)  # see test_lifecycle.test_stop_is_prompt_and_runs_atexit
    a.stop()
    assert "atexit ran in group 'imported'" in a.error_log()

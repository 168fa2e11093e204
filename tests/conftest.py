import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Apache  # noqa: E402

MPMS = os.environ.get('WSGI_RS_TEST_MPMS', 'event,prefork').split(',')
# Where the shared-suite applications run: in Apache's children, or in a
# daemon process group (WSGIDaemonProcess + WSGIProcessGroup).
MODES = os.environ.get('WSGI_RS_TEST_MODES', 'embedded,daemon').split(',')
# Every (MPM, mode) pair, as fixture parameters named e.g. "event-daemon".
SETUPS = [pytest.param((m, mode), id='%s-%s' % (m, mode)) for mode in MODES for m in MPMS]
# One prefork child (the event/worker settings already have one process):
# for tests that read state kept in one process.
ONE_PREFORK_CHILD = '''
<IfModule mpm_prefork_module>
StartServers 1
MinSpareServers 1
MaxSpareServers 1
MaxRequestWorkers 1
ServerLimit 1
</IfModule>
'''
DAEMON_CONF = 'WSGIDaemonProcess testd processes=1 threads=8\nWSGIProcessGroup testd\n'


def in_mode(conf, mode):
    """The configuration `conf`, with its applications in `mode`."""
    return (DAEMON_CONF + conf) if mode == 'daemon' else conf


@pytest.fixture(scope='session')
def start_apache():
    """start_apache(conf, mpm=..., ...) -> a started Apache; all are stopped
    (by PID) and removed at the end of the session, also on failures."""
    servers = []

    def start(conf='', **kw):
        a = Apache(conf=conf, **kw)
        servers.append(a)
        a.start()
        return a

    yield start
    for a in servers:
        try:
            a.stop()
        finally:
            if os.environ.get('WSGI_RS_KEEP_TEMP') is None:
                a.cleanup()


def server_fixture(conf, mpms=None, scope='module', modes=None, **kw):
    """A module-level fixture: one server per MPM and mode (embedded, daemon),
    shared by the module's tests; `server.mode` says which."""
    params = [pytest.param((m, mode), id='%s-%s' % (m, mode))
              for mode in (modes or MODES) for m in (mpms or MPMS)]

    @pytest.fixture(scope=scope, params=params)
    def fixture(request, start_apache):
        mpm, mode = request.param
        a = start_apache(in_mode(conf, mode), mpm=mpm, name=request.module.__name__, **kw)
        a.mode = mode
        yield a
        a.stop()
    return fixture


@pytest.fixture
def public_tmp():
    """A temp dir that Apache's children (www-data) can read."""
    import shutil
    import tempfile
    from pathlib import Path
    d = tempfile.mkdtemp(prefix='wsgi-rs-test-')
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


class OneConnection:
    """One keep-alive connection, so that requests reach the same process;
    reopened when the server closes it (after a 500, or KeepAliveTimeout)."""

    def __init__(self, a):
        import http.client
        self.a = a
        self.conn = http.client.HTTPConnection('127.0.0.1', a.port, timeout=20)

    def request(self, method, path, body=None, status=200):
        import http.client
        try:
            self.conn.request(method, path, body=body)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            self.conn.close()
            self.conn = http.client.HTTPConnection('127.0.0.1', self.a.port, timeout=20)
            self.conn.request(method, path, body=body)
            r = self.conn.getresponse()
        data = r.read()
        assert r.status == status, (path, r.status, data[:300], self.a.error_log()[-3000:])
        if (r.getheader('Connection') or '').lower() == 'close':
            self.conn.close()
            self.conn = http.client.HTTPConnection('127.0.0.1', self.a.port, timeout=20)
        return data

    def get(self, path, status=200):
        return self.request('GET', path, status=status)

    def json(self, path):
        import json
        return json.loads(self.get(path))

    def close(self):
        self.conn.close()


def connected_server_fixture(conf, name, client=None):
    """A module-level fixture like server_fixture's, giving (server, one
    connection to it): for tests that read state kept in one process."""
    @pytest.fixture(scope='module', params=SETUPS)
    def fixture(request, start_apache):
        mpm, mode = request.param
        a = start_apache(in_mode(conf, mode), mpm=mpm, name=name)
        a.mode = mode
        c = (client or OneConnection)(a)
        yield a, c
        c.close()
    return fixture

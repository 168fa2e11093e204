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

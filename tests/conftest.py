import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Apache  # noqa: E402

MPMS = os.environ.get('WSGI_RS_TEST_MPMS', 'event,prefork').split(',')


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


def server_fixture(conf, mpms=None, scope='module', **kw):
    """A module-level fixture: one server per MPM, shared by the module's tests."""
    @pytest.fixture(scope=scope, params=mpms or MPMS)
    def fixture(request, start_apache):
        a = start_apache(conf, mpm=request.param, name=request.module.__name__, **kw)
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

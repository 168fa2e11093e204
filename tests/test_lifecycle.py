"""Stopping and gracefully restarting Apache with Python loaded."""
import signal
import time

import pytest

from conftest import MPMS

CONF = 'WSGIScriptAlias /app @APPS@/atexit_app.wsgi\nWSGIScriptAlias /hello @APPS@/hello.wsgi\n'


@pytest.mark.parametrize('mpm', MPMS + ['worker'])
def test_stop_is_prompt_and_runs_atexit(start_apache, mpm):
    a = start_apache(CONF, mpm=mpm, name='stop')
    for _ in range(4):
        assert a.get('/app').body == b'started'  # each child now has a never-ending thread
    # Let the event MPM finish the lingering close of those connections first:
    # an immediate SIGTERM can hit a use-after-free race in Apache's own
    # close_worker_sockets() (mpm_event only; Debian's mod_wsgi 4.9 shows it
    # too, 4 of 30 quick start/stop cycles), which is not ours to test here.
    time.sleep(1)
    took = a.stop()
    assert took < 5, 'stop took %.1fs' % took
    log = a.error_log()
    assert 'atexit handler ran' in log
    assert 'Segmentation fault' not in log and 'exit signal' not in log
    assert 'still did not exit' not in log  # the parent never had to SIGKILL a child


@pytest.mark.parametrize('mpm', MPMS)
def test_graceful_restart_keeps_serving(start_apache, mpm):
    a = start_apache(CONF, mpm=mpm, name='graceful')
    assert a.get('/app').status == 200
    old_children = set(a.children())
    a.signal(signal.SIGUSR1)  # apachectl graceful
    deadline = time.time() + 15
    while time.time() < deadline and a.error_log().count('resuming normal operations') < 2:
        time.sleep(0.1)
    assert a.error_log().count('resuming normal operations') == 2
    for _ in range(10):
        assert a.get('/hello').body == b'Hello World!'
        assert a.get('/app').status == 200
    deadline = time.time() + 10
    while time.time() < deadline and set(a.children()) & old_children:
        time.sleep(0.1)
    assert not set(a.children()) & old_children, 'old children linger after a graceful restart'
    a.signal(signal.SIGHUP)  # apachectl restart
    deadline = time.time() + 15
    while time.time() < deadline and a.error_log().count('resuming normal operations') < 3:
        time.sleep(0.1)
    assert a.get('/hello').body == b'Hello World!'
    time.sleep(1)  # see test_stop_is_prompt_and_runs_atexit
    took = a.stop()
    assert took < 5
    log = a.error_log()
    assert 'Segmentation fault' not in log and 'exit signal' not in log


@pytest.mark.parametrize('mpm', MPMS + ['worker'])
def test_stop_after_worker_threads_used_sub_interpreters(start_apache, mpm):
    """With a daemon group configured, Python starts in a child's worker
    thread on its first embedded request; at stop those threads exit first
    and the child's main thread then ends the interpreters they used.
    CPython < 3.12 aborts if an interpreter's thread states were all deleted
    before that ("init_threadstate: thread state already initialized")."""
    import concurrent.futures
    a = start_apache('WSGIDaemonProcess idle threads=1\n'
                     'WSGIScriptAlias /one @APPS@/hello.wsgi application-group=one\n'
                     'WSGIScriptAlias /two @APPS@/hello.wsgi application-group=two\n'
                     'WSGIScriptAlias /main @APPS@/hello.wsgi application-group=%{GLOBAL}\n',
                     mpm=mpm, name='stopsub')
    paths = ['/one', '/two', '/main']
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda i: a.get(paths[i % 3]).status, range(120))) == {200}
    time.sleep(1)  # see test_stop_is_prompt_and_runs_atexit
    assert a.stop() < 5
    log = a.error_log()
    assert 'Fatal Python error' not in log and 'exit signal' not in log, log[-3000:]

"""Daemon mode's error-log lines are mod_wsgi 6.0.5's, to the letter, with
its WSGI#### message IDs and statuses: log monitoring written for mod_wsgi 6
matches them unchanged. Each expected line was compared with the real
mod_wsgi 6.0.5 (same probe app and configuration) before being written here.
"""
import glob
import os
import re
import signal
import socket
import threading
import time

import pytest

from harness import Apache

CONF = """
WSGIDaemonProcess ct processes=1 threads=1 connect-timeout=1
WSGIDaemonProcess q processes=1 threads=1 queue-timeout=1
WSGIDaemonProcess st processes=1 threads=2 socket-timeout=2
WSGIDaemonProcess main processes=1 threads=4
WSGIScriptAlias /ct @APPS@/logids.wsgi process-group=ct
WSGIScriptAlias /q @APPS@/logids.wsgi process-group=q application-group=%{GLOBAL}
WSGIScriptAlias /st @APPS@/logids.wsgi process-group=st
WSGIScriptAlias /main @APPS@/logids.wsgi process-group=main
WSGIScriptAlias /nosuch @APPS@/logids.wsgi
<Location /nosuch>
WSGIProcessGroup nosuch
</Location>
"""


@pytest.fixture(scope='module')
def a():
    s = Apache(CONF, name='logids')
    s.start()
    yield s
    s.stop()


def script(a):
    return os.path.join(a.apps, 'logids.wsgi')


def request_line(a, text):
    """The request-scoped line mod_wsgi 6 writes: the script, then the text."""
    return '[script %s] %s' % (script(a), text)


def wait_for_line_ending(a, tail, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(line.endswith(tail) for line in a.error_log().splitlines()):
            return True
        time.sleep(0.05)
    return False


def test_queue_timeout_is_wsgi0084_with_504(a):
    slow = {}
    t = threading.Thread(target=lambda: slow.setdefault('r', a.get('/q/sleep?4', timeout=20)))
    t.start()
    time.sleep(0.5)
    assert a.get('/q/', timeout=20).status == 504
    t.join()
    assert slow['r'].status == 200
    assert wait_for_line_ending(a, request_line(a, "WSGI0084: Queue timeout expired for WSGI daemon process 'q'."))


def test_header_read_timeout_is_wsgi0145_with_504(a):
    assert a.get('/st/sleep?5', timeout=20).status == 504
    assert wait_for_line_ending(a, request_line(
        a, "WSGI0145: Timeout when reading response headers from daemon process 'st'."))


def test_daemon_dying_before_headers_is_wsgi0146_with_502_and_the_restart_lines(a):
    pid = int(a.get('/main/pid').body)
    assert a.get('/main/exit').status == 502
    assert wait_for_line_ending(a, request_line(
        a, "WSGI0146: Daemon process 'main' closed connection before sending complete response headers."))
    # The parent's lines, as mod_wsgi 6 words them (os._exit(1) reads as
    # "signal 1" there: Apache passes the exit code, mod_wsgi decodes it as
    # a wait status).
    for tail in ("Process 'main' (pid=%d) has died; deregistering and restarting it." % pid,
                 "Process 'main' (pid=%d) terminated by signal 1" % pid,
                 "Process 'main' (pid=%d) has been deregistered and will no longer be monitored." % pid):
        assert wait_for_line_ending(a, '] ' + tail), tail
    started = re.compile(r"\] Starting daemon process 'main' with (uid=\d+, gid=\d+ and )?threads=4\.$", re.M)
    assert len(started.findall(a.error_log())) >= 2


def test_sigkill_of_a_daemon_is_logged_as_mod_wsgi_does(a):
    pid = int(a.get('/main/pid').body)
    os.kill(pid, signal.SIGKILL)
    assert wait_for_line_ending(a, "] Process 'main' (pid=%d) has died; deregistering and restarting it." % pid)
    assert wait_for_line_ending(a, "] Process 'main' (pid=%d) terminated by signal 9" % pid)
    deadline = time.time() + 10
    while a.get('/main/pid').status != 200 and time.time() < deadline:
        time.sleep(0.1)
    assert int(a.get('/main/pid').body) != pid


def test_oversized_header_is_wsgi0144_with_500(a):
    assert a.get('/main/bigheader').status == 500
    assert wait_for_line_ending(a, request_line(
        a, "WSGI0144: Response header line too long from daemon process 'main'."))


def test_touched_script_forces_a_restart_with_mod_wsgi_lines(a):
    first = int(a.get('/main/pid').body)
    time.sleep(1.1)
    os.utime(script(a))
    r = a.get('/main/pid')
    assert r.status == 200 and int(r.body) != first
    assert wait_for_line_ending(a, "] Forcing restart of daemon process 'main' due to modification of script '%s'."
                                % script(a))
    assert wait_for_line_ending(a, "] Reconnecting after WSGI daemon process 'main' restart, attempt #1.")
    assert wait_for_line_ending(a, "] Shutdown requested for daemon process 'main'.")


def test_unknown_group_is_wsgi0151_with_500(a):
    assert a.get('/nosuch/').status == 500
    assert wait_for_line_ending(a, request_line(
        a, "WSGI0151: No WSGI daemon process called 'nosuch' has been configured."))


def test_refused_connections_are_wsgi0116_and_a_missing_socket_wsgi0117_with_503(a):
    assert a.get('/ct/').status == 200
    socks = glob.glob(os.path.join(a.dir, 'wsgi.*.0.sock'))
    assert len(socks) == 1, socks
    path = socks[0]
    os.unlink(path)
    # A socket bound but not listening refuses: retried until connect-timeout.
    dead = socket.socket(socket.AF_UNIX)
    try:
        dead.bind(path)
        os.chmod(path, 0o777)
        start = time.time()
        assert a.get('/ct/', timeout=20).status == 503
        assert time.time() - start >= 0.9
        tail = request_line(a, "WSGI0116: Unable to connect to WSGI daemon process 'ct' on '%s' after multiple "
                               "attempts as listener backlog limit was exceeded or the socket does not exist." % path)
        assert wait_for_line_ending(a, tail)
        # The OS error comes first, as Apache shows an APR status.
        assert any(line.endswith(tail) and '(111)Connection refused: [client ' in line
                   for line in a.error_log().splitlines())
    finally:
        dead.close()
        os.unlink(path)
    # No socket at all: mod_wsgi 6 does not retry.
    assert a.get('/ct/', timeout=20).status == 503
    uid = int(open('/proc/%d/status' % a.children()[0]).read().split('Uid:')[1].split()[1])
    tail = request_line(a, "WSGI0117: Unable to connect to WSGI daemon process 'ct' on '%s' as user with uid=%d."
                        % (path, uid))
    assert wait_for_line_ending(a, tail)
    assert any(line.endswith(tail) and '(2)No such file or directory: [client ' in line
               for line in a.error_log().splitlines())


def test_no_daemon_groups_at_all_is_wsgi0150_with_500():
    s = Apache('WSGIScriptAlias /nosuch @APPS@/logids.wsgi\n<Location /nosuch>\nWSGIProcessGroup nosuch\n'
               '</Location>\n', name='logids-nodaemons')
    s.start()
    try:
        assert s.get('/nosuch/').status == 500
        assert wait_for_line_ending(s, request_line(
            s, "WSGI0150: No WSGI daemon process called 'nosuch' has been configured."))
    finally:
        s.stop()

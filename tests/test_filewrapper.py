"""wsgi.file_wrapper: file buckets for real files, iteration otherwise."""
import os
import socket

import pytest

from conftest import server_fixture

apache = server_fixture('WSGIScriptAlias /fw @APPS@/filewrapper.wsgi\n')

DATA = bytes((i * 7 + i // 256) % 256 for i in range(100000))


@pytest.fixture(autouse=True)
def data_file(apache):
    path = os.path.join(apache.apps, 'data.bin')
    if not os.path.exists(path):
        with open(path, 'wb') as f:
            f.write(DATA)


def test_whole_file(apache):
    r = apache.get('/fw/full')
    assert r.status == 200 and r.body == DATA
    assert r.header('Content-Length') == str(len(DATA))


def test_from_current_position(apache):
    assert apache.get('/fw/seek?1000').body == DATA[1000:]
    assert apache.get('/fw/buffered').body == DATA[10:]


def test_content_length_limits_the_range(apache):
    r = apache.get('/fw/length?500')
    assert r.body == DATA[:500] and r.header('Content-Length') == '500'


def test_file_like_without_fileno_is_iterated(apache):
    assert apache.get('/fw/bytesio').body == b'from a BytesIO ' * 1000


def test_head(apache):
    r = apache.request('HEAD', '/fw/full')
    assert r.status == 200 and r.body == b''


# --- sendfile needs WSGIEnableSendfile On (and not EnableSendfile Off; see
# also test_head_and_sendfile.py); files are never memory-mapped; a file cut
# short while it is sent costs the request, never the child (no SIGBUS).

import shutil
import time

SENDFILE_CONF = '''
SendBufferSize 16384
WSGIScriptAlias /on @APPS@/sendfile.wsgi
WSGIScriptAlias /off @APPS@/sendfile.wsgi
<Location /on>
    WSGIEnableSendfile On
    EnableSendfile On
</Location>
WSGIScriptAlias /deflate @APPS@/sendfile.wsgi
<Location /off>
    EnableSendfile Off
</Location>
<Location /deflate>
    EnableSendfile Off
    SetOutputFilter DEFLATE
</Location>
'''

# 3 MiB, under APR's 4 MiB mmap limit, and incompressible: mod_deflate must
# read it in user space, where a page past the end of a truncated mapping is SIGBUS.
BIG = os.urandom(3 << 20)


def traced(apache, path):
    """The syscalls (sendfile, mmap) Apache's only child makes while serving path."""
    if not shutil.which('strace'):
        pytest.skip('strace is not installed')
    return apache.traced(path, 'sendfile,sendfile64,mmap', pids=apache.children()[:1])


@pytest.fixture(scope='module')
def sendfile_apache(start_apache):
    a = start_apache(SENDFILE_CONF, mpm='event', name='sendfile')
    with open(os.path.join(a.apps, 'big.bin'), 'wb') as f:
        f.write(BIG)
    os.chmod(os.path.join(a.apps, 'big.bin'), 0o666)
    yield a
    a.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason='strace -p needs root')
def test_sendfile_is_used_when_enabled(sendfile_apache):
    r, trace = traced(sendfile_apache, '/on/big.bin')
    assert r.status == 200 and r.body == BIG
    assert 'sendfile(' in trace, trace[-2000:]
    # Never memory-mapped (a truncated file would raise SIGBUS): no mapping
    # of the file's size.
    assert str(len(BIG)) not in ''.join(l for l in trace.splitlines() if 'mmap(' in l)


@pytest.mark.skipif(os.geteuid() != 0, reason='strace -p needs root')
def test_sendfile_is_not_used_when_disabled(sendfile_apache):
    r, trace = traced(sendfile_apache, '/off/big.bin')
    assert r.status == 200 and r.body == BIG
    assert 'sendfile(' not in trace, trace[-2000:]
    assert str(len(BIG)) not in ''.join(l for l in trace.splitlines() if 'mmap(' in l)


@pytest.mark.parametrize('where', ['on', 'off', 'deflate'])
def test_file_truncated_while_sent_does_not_kill_the_child(sendfile_apache, where):
    a = sendfile_apache
    name = 'cut-%s.bin' % where
    path = os.path.join(a.apps, name)
    with open(path, 'wb') as f:
        f.write(BIG)
    os.chmod(path, 0o666)
    assert a.get('/on/big.bin').status == 200  # the child is up
    children = set(a.children())
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow client
    s.settimeout(10)
    s.connect(('127.0.0.1', a.port))
    s.sendall(('GET /%s/%s?truncate HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n'
               'Connection: close\r\n\r\n' % (where, name)).encode())
    time.sleep(1.5)  # the app truncates the file after 0.5 s
    got = b''
    while True:
        try:
            b = s.recv(65536)
        except OSError:
            break
        if not b:
            break
        got += b
    s.close()
    assert len(got) < len(BIG)  # cut short, not padded out to a complete-looking response
    assert a.get('/on/big.bin').body == BIG
    assert set(a.children()) == children
    log = a.error_log()
    assert 'SIGBUS' not in log and 'Bus error' not in log and 'exit signal' not in log

"""mod_wsgi 6's telemetry service (WSGITelemetryService): the datagrams our
processes send to a UNIX socket, decoded with mod_wsgi-telemetry's own
decoder and ingester (scripts/ci-tools.sh installs mod_wsgi-telemetry into
target/ci-tools; WSGI_RS_TELEMETRY_PKG: another directory holding its
mod_wsgi/telemetry package). Without it, a decoder written from the wire
format's description is used, except under CI, where its absence fails."""
import glob
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

import pytest

from conftest import ONE_PREFORK_CHILD, SETUPS, OneConnection, in_mode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CI_TOOLS = os.path.join(ROOT, os.environ.get('WSGI_RS_CI_TOOLS', os.path.join('target', 'ci-tools')))
for PKG in [os.environ.get('WSGI_RS_TELEMETRY_PKG', '')] + sorted(
        glob.glob(os.path.join(CI_TOOLS, 'lib', 'python3*', 'site-packages'))):
    if PKG and os.path.isdir(os.path.join(PKG, 'mod_wsgi', 'telemetry')):
        sys.path.insert(0, PKG)
        break
try:
    from mod_wsgi.telemetry.ingest import Ingester
    from mod_wsgi.telemetry.wire import decode
    OFFICIAL = True
except ImportError:
    OFFICIAL = False
    Ingester = None

    class Sample:
        def __init__(self, version, kind, pid, seq, stamp, fields):
            self.version, self.kind, self.pid, self.seq = version, kind, pid, seq
            self.stamp, self.fields = stamp, fields

    # Field names this test reads, by id (the wire format's table).
    NAMES = {5: 'hostname', 6: 'process_group', 1: 'mod_wsgi_version', 20: 'request_count',
             121: 'status_2xx_total', 123: 'status_4xx_total', 200: 'slow_record_state',
             202: 'slow_duration', 203: 'slow_thread_id', 210: 'slow_method', 213: 'slow_script_name',
             214: 'slow_path_info', 217: 'slow_user_agent', 240: 'slow_status',
             130: 'shutdown_reason', 94: 'request_time_buckets'}

    def decode(buf):
        magic, version, kind, _flags, pid, seq, stamp = struct.unpack_from('<4sBBHIId', buf)
        assert magic == b'WSGI'
        off, fields = 24, {}
        while off < len(buf):
            fid, tag = struct.unpack_from('<HB', buf, off)
            off += 3
            if tag in (1, 2, 3):
                value = struct.unpack_from({1: '<Q', 2: '<d', 3: '<q'}[tag], buf, off)[0]
                off += 8
            else:
                (n,) = struct.unpack_from('<H', buf, off)
                off += 2
                width, fmt = {4: (1, None), 5: (4, 'i'), 6: (8, 'd')}[tag]
                value = (bytes(buf[off:off + n]) if fmt is None
                         else list(struct.unpack_from('<%d%s' % (n, fmt), buf, off)))
                off += n * width
            fields[NAMES.get(fid, 'id%d' % fid)] = value
        return Sample(version, kind, pid, seq, stamp, fields)

REQUEST, SLOW, STARTED, STOPPING = 2, 4, 5, 6


class Receiver:
    """A bound SOCK_DGRAM socket that Apache's users may send to, read by a
    thread into `datagrams`."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='wsgi-rs-telemetry-')
        os.chmod(self.dir, 0o755)
        self.path = os.path.join(self.dir, 'telemetry.sock')
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)
        self.sock.settimeout(0.2)
        self.datagrams = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.datagrams.append(data)

    def samples(self):
        with self.lock:
            return [decode(d) for d in self.datagrams]

    def wait_for(self, predicate, timeout=6.0):
        """The samples once predicate(samples) holds."""
        deadline = time.time() + timeout
        while True:
            samples = self.samples()
            if predicate(samples) or time.time() > deadline:
                return samples
            time.sleep(0.1)

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


CONF = '''
WSGIScriptAlias /t @APPS@/telemetry.wsgi application-group=%{GLOBAL}
WSGITelemetryService unix:@SOCK@ interval=0.5
WSGISlowRequests 0.2
''' + ONE_PREFORK_CHILD


@pytest.fixture(scope='module', params=SETUPS)
def telemetry(request, start_apache):
    mpm, mode = request.param
    r = Receiver()
    # CaptureUserAgent in one mode, not the other: both ways are seen.
    options = 'WSGITelemetryOptions +CaptureUserAgent\n' if mode == 'embedded' else ''
    conf = in_mode(CONF.replace('@SOCK@', r.path) + options, mode)
    a = start_apache(conf, mpm=mpm, name='telemetry')
    a.mode = mode
    c = OneConnection(a)
    yield a, c, r
    c.close()
    a.stop()
    r.close()


def quiet_request_counts(r, pids, expected):
    """Waits until the REQUEST samples of `pids` add up to `expected`."""
    def total(samples):
        return sum(s.fields.get('request_count', 0) for s in samples
                   if s.kind == REQUEST and s.pid in pids)
    samples = r.wait_for(lambda s: total(s) >= expected)
    time.sleep(1.2)  # two more ticks: nothing else may arrive
    samples = r.samples()
    return total(samples), samples


def test_samples(telemetry):
    a, c, r = telemetry
    pid = int(c.get('/t/pid'))
    # While the service is on, the reporter owns the figures (mod_wsgi 6).
    assert c.json('/t/metrics') == [None, None]
    c.get('/t/missing', status=404)
    for _ in range(3):
        c.get('/t/pid')
    sent = 6
    total, samples = quiet_request_counts(r, {pid}, sent)
    assert total == sent, [(s.kind, s.fields.get('request_count')) for s in samples]
    mine = [s for s in samples if s.pid == pid]
    if OFFICIAL:  # every field id is one the wire format defines
        assert not [k for s in mine for k in s.fields if k.startswith('id')]
    assert all(s.version == 1 for s in mine)
    seqs = [s.seq for s in mine]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] >= 1, seqs
    started = [s for s in mine if s.kind == STARTED]
    assert len(started) == 1 and started[0].seq == 1, [s.kind for s in mine]
    group = b'testd' if a.mode == 'daemon' else None
    assert started[0].fields.get('process_group') == group
    assert started[0].fields['mod_wsgi_version'] and started[0].fields['hostname']
    requests = [s for s in mine if s.kind == REQUEST]
    assert len(requests) >= 2
    assert sum(s.fields['status_2xx_total'] for s in requests) == sent - 1
    assert sum(s.fields['status_4xx_total'] for s in requests) == 1
    assert sum(sum(s.fields['request_time_buckets']) for s in requests) == sent
    if OFFICIAL:
        ing = Ingester('unix:/unused')
        for d in list(r.datagrams):
            ing._handle(d)
        snap = ing.snapshot()
        assert snap['decode_errors'] == 0
        proc = [p for p in snap['processes'] if p['pid'] == pid][0]
        assert proc['drops'] == 0 and proc['hostname']
        assert any(e['pid'] == pid for e in snap['lifecycle_events'])


def test_slow_requests(telemetry):
    a, c, r = telemetry
    pid = int(c.get('/t/pid'))
    c.conn.request('GET', '/t/sleep?0.4', headers={'User-Agent': 'telemetry-test/1.0'})
    resp = c.conn.getresponse()
    assert resp.read() == b'slept'

    def slow(samples, state):
        return [s for s in samples if s.kind == SLOW and s.pid == pid
                and s.fields['slow_record_state'] == state]
    samples = r.wait_for(lambda s: slow(s, 1))
    done = slow(samples, 1)
    assert len(done) == 1, done
    f = done[0].fields
    assert (f['slow_method'], f['slow_script_name'], f['slow_path_info'], f['slow_status']) == \
        (b'GET', b'/t', b'/sleep', 200)
    assert 0.4 <= f['slow_duration'] < 5
    assert f['slow_thread_id'] >= 1
    if a.mode == 'embedded':
        assert f['slow_user_agent'] == b'telemetry-test/1.0'
    else:
        assert 'slow_user_agent' not in f
    # A request still running past the threshold is reported while it runs.
    c.get('/t/sleep?1.3')
    samples = r.wait_for(lambda s: len(slow(s, 1)) == 2)
    running = [s for s in slow(samples, 0) if s.fields['slow_path_info'] == b'/sleep']
    assert running and all(s.fields['slow_status'] == 0 for s in running), \
        [s.fields for s in slow(samples, 0)]
    if OFFICIAL:
        ing = Ingester('unix:/unused')
        for d in list(r.datagrams):
            ing._handle(d)
        snap = ing.snapshot()
        assert snap['decode_errors'] == 0
        assert any(e['entry']['method'] == 'GET' and e['entry']['status'] == 200
                   for e in snap['slow_requests'])


def test_serves_without_listener(start_apache):
    """Nothing listens (no socket, then a socket nobody reads): requests are
    answered as usual, and shutdown still works."""
    d = tempfile.mkdtemp(prefix='wsgi-rs-telemetry-')
    path = os.path.join(d, 'none.sock')
    try:
        conf = CONF.replace('@SOCK@', path)
        a = start_apache(conf, mpm='event', name='telemetry-none')
        c = OneConnection(a)
        for _ in range(5):
            c.get('/t/pid')
        # A bound socket nobody reads: its queue (net.unix.max_dgram_qlen,
        # 10 by default) fills within a few seconds, then sends are dropped.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        os.chmod(path, 0o777)
        deadline = time.time() + 6
        while time.time() < deadline:
            c.get('/t/pid')
        assert c.get('/t/sleep?0.3') == b'slept'
        s.close()
        c.close()
        a.stop()
        assert 'Segmentation fault' not in a.error_log()
        assert 'panicked' not in a.error_log()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_stopping_is_reported(start_apache):
    r = Receiver()
    try:
        a = start_apache(in_mode(CONF.replace('@SOCK@', r.path), 'daemon'),
                         mpm='event', name='telemetry-stop')
        c = OneConnection(a)
        pid = int(c.get('/t/pid'))
        c.close()
        # A request counts once its thread has finished with it, just after
        # the client has the response: stop only then.
        time.sleep(0.5)
        a.stop()
        samples = r.wait_for(lambda s: any(x.kind == STOPPING and x.pid == pid for x in s))
        stopping = [s for s in samples if s.kind == STOPPING and s.pid == pid]
        assert stopping and stopping[0].fields['shutdown_reason'], [s.kind for s in samples]
        assert stopping[0].fields['process_group'] == b'testd'
        # The last partial interval went out first.
        assert sum(s.fields['request_count'] for s in samples
                   if s.kind == REQUEST and s.pid == pid) == 1
    finally:
        r.close()


def test_official_decoder_is_used_in_ci():
    """CI installs mod_wsgi-telemetry (scripts/ci-tools.sh): the datagrams
    must be checked with its decoder there, not only with ours."""
    if os.environ.get('CI') and not OFFICIAL:
        pytest.fail('mod_wsgi-telemetry is not importable from %s: run scripts/deps.sh --tests' % CI_TOOLS)

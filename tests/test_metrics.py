"""Server metrics: the wsgi-rs-metrics handler (Prometheus text format),
the counters behind it, and the mod_status section."""
import os
import signal
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

CONF = """
WSGIDaemonProcess ga processes=2 threads=4 display-name=%{GROUP}
WSGIDaemonProcess gb processes=2 threads=2 display-name=%{GROUP}
WSGIDaemonProcess cap processes=1 threads=3 display-name=%{GROUP}
WSGIDaemonProcess crash processes=1 threads=2 display-name=%{GROUP}
WSGIDaemonProcess recycle processes=1 threads=1 maximum-requests=3 display-name=%{GROUP}
WSGIDaemonProcess q processes=1 threads=1 queue-timeout=1 display-name=%{GROUP}
WSGIDaemonProcess st processes=1 threads=1 socket-timeout=1 display-name=%{GROUP}
WSGIScriptAlias /ga @APPS@/daemon.wsgi process-group=ga application-group=%{GLOBAL}
WSGIScriptAlias /gb @APPS@/daemon.wsgi process-group=gb application-group=%{GLOBAL}
WSGIScriptAlias /cap @APPS@/daemon.wsgi process-group=cap application-group=%{GLOBAL}
WSGIScriptAlias /crash @APPS@/daemon.wsgi process-group=crash application-group=%{GLOBAL}
WSGIScriptAlias /recycle @APPS@/daemon.wsgi process-group=recycle application-group=%{GLOBAL}
WSGIScriptAlias /q @APPS@/daemon.wsgi process-group=q application-group=%{GLOBAL}
WSGIScriptAlias /st @APPS@/daemon.wsgi process-group=st application-group=%{GLOBAL}
WSGIServerMetrics On
WSGIDaemonProcess sm processes=1 threads=1 server-metrics=On
WSGIScriptAlias /sm-emb @APPS@/server_metrics.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}
WSGIScriptAlias /sm-off @APPS@/server_metrics.wsgi process-group=gb application-group=%{GLOBAL}
WSGIScriptAlias /sm-on @APPS@/server_metrics.wsgi process-group=sm application-group=%{GLOBAL}
WSGIScriptAlias /emb @APPS@/daemon.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}
<Location /server-metrics>
    SetHandler wsgi-rs-metrics
    Require ip 127.0.0.1
</Location>
<Location /denied-metrics>
    SetHandler wsgi-rs-metrics
    Require ip 192.0.2.1
</Location>
<Location /server-status>
    SetHandler server-status
    Require ip 127.0.0.1
</Location>
"""


@pytest.fixture(scope='module', params=['event', 'prefork'])
def a(request, start_apache):
    a = start_apache(CONF, mpm=request.param, name='metrics', modules=('status',))
    yield a
    a.stop()


def scrape(a):
    r = a.get('/server-metrics')
    assert r.status == 200, (r.status, r.body[:300])
    assert r.header('Content-Type') == 'text/plain; version=0.0.4; charset=utf-8'
    samples = {}
    for fam in text_string_to_metric_families(r.body.decode()):
        assert fam.name.startswith('wsgi_rs_'), fam.name
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            samples[key] = samples.get(key, 0) + s.value
    return samples


def value(samples, name, **labels):
    """The sum of the samples `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


def wait_for(a, cond, timeout=10):
    """Scrapes until cond(samples) holds (requests are counted when Apache
    logs them, just after the client has the response)."""
    deadline = time.time() + timeout
    while True:
        s = scrape(a)
        if cond(s) or time.time() > deadline:
            return s
        time.sleep(0.1)


def req(group, cls):
    return lambda s: value(s, 'wsgi_rs_requests_total', process_group=group,
                           application_group='', status_class=cls)


def test_requests_by_group_status_and_bytes(a):
    before = scrape(a)
    plan = {'ga': 13, 'gb': 7, '': 5}
    prefix = {'ga': '/ga', 'gb': '/gb', '': '/emb'}
    body = b'x' * 1000
    for g, n in plan.items():
        for _ in range(n):
            assert a.get(prefix[g] + '/info').status == 200
        assert a.post(prefix[g] + '/echo', body).status == 200
        assert a.get(prefix[g] + '/status?404').status == 404
        assert a.get(prefix[g] + '/status?500').status == 500

    def done(s):  # every request logged (the test then checks no more were counted)
        return all(req(g, '2xx')(s) - req(g, '2xx')(before) >= n + 1
                   and req(g, '5xx')(s) - req(g, '5xx')(before) >= 1
                   and req(g, '4xx')(s) - req(g, '4xx')(before) >= 1 for g, n in plan.items())
    after = wait_for(a, done)
    time.sleep(0.2)
    after = scrape(a)
    for g, n in plan.items():
        assert req(g, '2xx')(after) - req(g, '2xx')(before) == n + 1, g
        assert req(g, '4xx')(after) - req(g, '4xx')(before) == 1, g
        assert req(g, '5xx')(after) - req(g, '5xx')(before) == 1, g
        count = value(after, 'wsgi_rs_request_duration_seconds_count', process_group=g)
        count0 = value(before, 'wsgi_rs_request_duration_seconds_count', process_group=g)
        assert count - count0 == n + 3
        inf = value(after, 'wsgi_rs_request_duration_seconds_bucket', process_group=g, le='+Inf')
        assert inf == count
        bin_ = value(after, 'wsgi_rs_request_body_bytes_total', process_group=g)
        bin0 = value(before, 'wsgi_rs_request_body_bytes_total', process_group=g)
        assert bin_ - bin0 == len(body)
        bout = value(after, 'wsgi_rs_response_bytes_total', process_group=g)
        bout0 = value(before, 'wsgi_rs_response_bytes_total', process_group=g)
        assert bout - bout0 >= len(body) + n * 100
    # Both processes of ga served some of them, and the daemon counted them.
    taken = {dict(ls)['pid']: v for (n, ls), v in after.items()
             if n == 'wsgi_rs_daemon_process_requests_total' and dict(ls)['process_group'] == 'ga'}
    assert len(taken) == 2
    # The queue histogram saw every request a ga daemon thread took.
    q = value(after, 'wsgi_rs_daemon_queue_seconds_count', process_group='ga')
    q0 = value(before, 'wsgi_rs_daemon_queue_seconds_count', process_group='ga')
    assert q - q0 == plan['ga'] + 3


def test_capacity_busy_and_total(a):
    s = scrape(a)
    assert value(s, 'wsgi_rs_daemon_threads', process_group='cap') == 3
    assert value(s, 'wsgi_rs_daemon_threads', process_group='ga') == 8
    assert value(s, 'wsgi_rs_daemon_processes', process_group='gb') == 2
    # Apache's own workers (embedded mode's capacity): this scrape is one of the busy ones.
    assert value(s, 'wsgi_rs_apache_workers', state='busy') >= 1
    assert value(s, 'wsgi_rs_apache_workers_limit') >= value(s, 'wsgi_rs_apache_workers') > 0
    if a.mpm == 'prefork':
        pytest.skip('the harness prefork has 4 workers: not enough for 3 slow requests and a scrape')
    threads = [threading.Thread(target=a.get, args=('/cap/sleep?2',)) for _ in range(3)]
    [t.start() for t in threads]
    s = wait_for(a, lambda s: value(s, 'wsgi_rs_daemon_threads_busy', process_group='cap') == 3, 3)
    assert value(s, 'wsgi_rs_daemon_threads_busy', process_group='cap') == 3
    assert value(s, 'wsgi_rs_daemon_threads', process_group='cap') == 3
    [t.join() for t in threads]
    s = wait_for(a, lambda s: value(s, 'wsgi_rs_daemon_threads_busy', process_group='cap') == 0, 3)
    assert value(s, 'wsgi_rs_daemon_threads_busy', process_group='cap') == 0


def test_restarts_by_cause(a):
    before = scrape(a)
    crashes = value(before, 'wsgi_rs_daemon_restarts_total', process_group='crash', cause='crash')
    pid = int(__import__('json').loads(a.get('/crash/info').body)['pid'])
    os.kill(pid, signal.SIGKILL)
    s = wait_for(a, lambda s: value(s, 'wsgi_rs_daemon_restarts_total', process_group='crash',
                                    cause='crash') > crashes)
    assert value(s, 'wsgi_rs_daemon_restarts_total', process_group='crash', cause='crash') == crashes + 1
    recycled = value(before, 'wsgi_rs_daemon_restarts_total', process_group='recycle', cause='maximum-requests')
    for _ in range(3):
        assert a.get('/recycle/info').status == 200
    s = wait_for(a, lambda s: value(s, 'wsgi_rs_daemon_restarts_total', process_group='recycle',
                                    cause='maximum-requests') > recycled)
    assert value(s, 'wsgi_rs_daemon_restarts_total', process_group='recycle',
                 cause='maximum-requests') == recycled + 1
    # A daemon that dies mid-request: a 502 counted as daemon-crash.
    bad = value(s, 'wsgi_rs_daemon_errors_total', process_group='crash', cause='daemon-crash', status='502')
    assert a.get('/crash/kill').status == 502
    s = wait_for(a, lambda s: value(s, 'wsgi_rs_daemon_errors_total', process_group='crash',
                                    cause='daemon-crash') > bad)
    assert value(s, 'wsgi_rs_daemon_errors_total', process_group='crash', cause='daemon-crash',
                 status='502') == bad + 1


def test_gateway_timeouts_by_cause(a):
    before = scrape(a)
    qt = value(before, 'wsgi_rs_daemon_errors_total', process_group='q', cause='queue-timeout', status='504')
    slow = threading.Thread(target=a.get, args=('/q/sleep?2.5',))
    slow.start()
    time.sleep(0.3)
    r = a.get('/q/info')
    slow.join()
    assert r.status == 504
    st = value(before, 'wsgi_rs_daemon_errors_total', process_group='st', cause='socket-timeout', status='504')
    assert a.get('/st/sleep?2').status == 504
    s = wait_for(a, lambda s: value(s, 'wsgi_rs_daemon_errors_total', process_group='st',
                                    cause='socket-timeout') > st)
    assert value(s, 'wsgi_rs_daemon_errors_total', process_group='q', cause='queue-timeout',
                 status='504') == qt + 1
    assert value(s, 'wsgi_rs_daemon_errors_total', process_group='st', cause='socket-timeout',
                 status='504') == st + 1
    assert value(s, 'wsgi_rs_requests_total', process_group='q', status_class='5xx') >= 1


def test_per_process_rss_and_interpreters(a):
    a.get('/gb/info')
    s = scrape(a)
    rss = {dict(ls)['pid']: v for (n, ls), v in s.items()
           if n == 'wsgi_rs_daemon_process_rss_bytes' and dict(ls)['process_group'] == 'gb'}
    assert len(rss) == 2 and all(1 << 20 < v < 1 << 32 for v in rss.values()), rss
    interps = [v for (n, ls), v in s.items()
               if n == 'wsgi_rs_daemon_process_interpreters' and dict(ls)['process_group'] == 'gb']
    assert len(interps) == 2 and all(v >= 1 for v in interps)


def test_access_control_and_format(a):
    assert a.get('/denied-metrics').status == 403
    r = a.get('/server-metrics')
    text = r.body.decode()
    assert '# HELP wsgi_rs_requests_total ' in text
    assert '# TYPE wsgi_rs_request_duration_seconds histogram' in text
    assert 'process_group=""' in text  # embedded mode


def test_mod_status_section(a):
    r = a.get('/server-status')
    assert r.status == 200
    body = r.body.decode()
    assert 'mod_wsgi_rs daemon process groups' in body
    assert '<td>ga</td>' in body and '<td>cap</td>' in body
    auto = a.get('/server-status?auto').body.decode()
    assert 'WSGIDaemon ga Processes: 2\n' in auto
    assert 'WSGIDaemon cap Threads: 3\n' in auto
    assert 'WSGIDaemon cap BusyThreads: 0\n' in auto


def test_server_metrics_function(a):
    import json
    m = json.loads(a.get('/sm-emb').body)
    assert m['server_limit'] >= 1 and m['thread_limit'] >= 1
    assert m['current_time'] >= m['restart_time'] > 0
    assert len(m['processes']) == m['server_limit']
    workers = [w for p in m['processes'] for w in p['workers']]
    assert len(workers) == m['server_limit'] * m['thread_limit']
    assert {'thread_num', 'generation', 'status', 'access_count', 'bytes_served', 'start_time',
            'stop_time', 'last_used', 'client', 'request', 'vhost'} <= set(workers[0])
    # The worker serving this request is busy writing it.
    assert any(w['status'] == 'W' and w['request'].startswith('GET /sm-emb') for w in workers)
    # A daemon group without server-metrics=On gets None.
    assert json.loads(a.get('/sm-off').body) is None
    on = json.loads(a.get('/sm-on').body)
    assert on is None or on['server_limit'] == m['server_limit']


def test_counters_survive_a_graceful_restart(start_apache):
    a = start_apache(CONF, mpm='event', name='metrics-restart', modules=('status',))
    try:
        for _ in range(5):
            assert a.get('/ga/info').status == 200
        s = wait_for(a, lambda s: req('ga', '2xx')(s) >= 5)
        assert req('ga', '2xx')(s) == 5
        old = {dict(ls)['pid'] for (n, ls), v in s.items() if n == 'wsgi_rs_daemon_process_rss_bytes'}
        a.signal(signal.SIGUSR1)

        def restarted(s):
            pids = {dict(ls)['pid'] for (n, ls), v in s.items() if n == 'wsgi_rs_daemon_process_rss_bytes'}
            return pids and not pids & old and value(s, 'wsgi_rs_daemon_threads', process_group='ga') == 8
        time.sleep(1)
        s = wait_for(a, restarted)
        assert restarted(s)
        assert req('ga', '2xx')(s) == 5  # the counters carry on
        assert value(s, 'wsgi_rs_daemon_processes', process_group='ga') == 2
        assert a.get('/ga/info').status == 200
        s = wait_for(a, lambda s: req('ga', '2xx')(s) >= 6)
        assert req('ga', '2xx')(s) == 6
    finally:
        a.stop()

"""mod_wsgi 6's per-process metrics API from a real application:
start_recording_metrics(), request_metrics() (drained per call) and
process_metrics(), embedded and daemon; and WSGISlowRequests."""
import threading

import pytest

from conftest import ONE_PREFORK_CHILD, OneConnection, connected_server_fixture

CONF = '''
WSGIScriptAlias /m @APPS@/metrics_api.wsgi application-group=%{GLOBAL}
WSGISlowRequests 0.25
# One prefork child: every request of a test reaches the same process.
''' + ONE_PREFORK_CHILD


server = connected_server_fixture(CONF, 'metrics_api')


def test_metrics_api(server):
    a, c = server
    # None until recording starts (mod_wsgi 6).
    assert c.json('/m/request_metrics') is None
    assert c.json('/m/process_metrics') is None
    assert c.request('GET', '/m/start') == b'started'
    c.request('GET', '/m/start')  # idempotent
    first = c.json('/m/request_metrics')  # drains the interval so far
    assert first['pid'] > 0
    c.request('GET', '/m/sleep?0.3')
    c.request('GET', '/m/missing', status=404)
    c.request('POST', '/m/post', body=b'x' * 1000)
    c.request('GET', '/m/raise', status=500)
    rm = c.json('/m/request_metrics')
    assert rm['pid'] == first['pid']
    # Only this interval's four requests (the metrics calls themselves count
    # once they finish: the previous request_metrics call is in here too).
    assert rm['request_count'] == 5, rm
    assert (rm['status_1xx'], rm['status_2xx'], rm['status_3xx'], rm['status_4xx'],
            rm['status_5xx']) == (0, 3, 0, 1, 1)
    assert rm['input_bytes'] == 1000 and rm['input_reads'] >= 1
    assert rm['output_bytes'] >= 1000 + len(b'slept') + len(b'nothing here')
    assert rm['application_time_max_us'] >= 300000
    assert rm['request_time_max_us'] >= rm['application_time_max_us']
    assert sum(rm['application_time_buckets']) == 5
    assert len(rm['application_time_buckets']) == 65
    # The 0.3 s sleep: 300 ms = 1.17 * 2^8 ms, octave 8, sub-bucket 0.
    assert rm['application_time_buckets'][32] == 1
    assert rm['request_throughput'] > 0 and rm['sample_period'] > 0.3
    assert 0 < rm['capacity_utilization'] <= 1
    assert rm['request_threads_maximum'] >= 1
    assert len(rm['request_threads_busy_time']) == rm['request_threads_maximum']
    if a.mode == 'daemon':
        # Measured from the hand-off times the Apache child sends.
        assert rm['queue_time'] is not None and rm['queue_time_max_us'] is not None
        assert rm['daemon_time_min_us'] is not None
    else:
        assert rm['queue_time'] is None and rm['daemon_time'] is None
    for key in ('cpu_user_time', 'cpu_system_time', 'memory_rss', 'memory_max_rss', 'server_time',
                'gil_wait_time', 'output_write_time', 'input_read_time', 'request_threads_active'):
        assert key in rm
    # Drained: the next interval holds just the previous request_metrics call.
    again = c.json('/m/request_metrics')
    assert again['request_count'] == 1 and again['status_2xx'] == 1
    pm = c.json('/m/process_metrics')
    assert pm['pid'] == rm['pid']
    assert pm['request_count'] >= 7
    assert pm['memory_rss'] > 1_000_000 and pm['memory_max_rss'] >= pm['memory_rss'] // 2
    assert pm['cpu_time'] > 0 and pm['running_time'] >= 0
    assert pm['current_time'] >= pm['restart_time'] > 1.7e9
    assert pm['active_requests'] == 1  # this one
    assert sum(t['request_count'] for t in pm['threads']) == pm['request_count']
    assert pm['request_busy_time'] >= 0.3


def test_busy_threads_show_in_process_metrics(server):
    a, c = server
    if a.mpm == 'prefork':
        pytest.skip('the one prefork child (MaxRequestWorkers 1) serves one request at a time')
    c.request('GET', '/m/start')
    done = []
    t = threading.Thread(target=lambda: done.append(
        OneConnection(a).request('GET', '/m/sleep?1.0')))
    t.start()
    try:
        import time
        deadline = time.time() + 5
        while time.time() < deadline:
            pm = c.json('/m/process_metrics')
            if pm['active_requests'] >= 2:
                break
            time.sleep(0.05)
        assert pm['active_requests'] >= 2, pm
    finally:
        t.join()
    assert done == [b'slept']


def test_slow_requests_are_logged(server):
    a, c = server
    c.request('GET', '/m/sleep/logged?0.3')
    assert a.wait_for_log('Slow request: GET /m/sleep/logged answered 200 after 0.3')
    c.request('GET', '/m/sleep?0.01')
    c.request('GET', '/m/missing', status=404)
    assert 'Slow request: GET /m/missing' not in a.error_log()

"""mod_wsgi's event and shutdown API: subscribe_events (request_started,
response_started, request_exception, request_finished, process_stopping),
subscribe_shutdown, request_data() and active_requests, per interpreter,
embedded and daemon."""
import json

import pytest

from conftest import ONE_PREFORK_CHILD, OneConnection, connected_server_fixture

CONF = '''
WSGIScriptAlias /main @APPS@/events.wsgi application-group=%{GLOBAL}
WSGIScriptAlias /sub @APPS@/events.wsgi application-group=other
WSGIScriptAlias /quiet @APPS@/noevents.wsgi application-group=quiet
# One prefork child: a 500 closes the connection, the next one must reach
# the same process (the events are recorded in its memory).
''' + ONE_PREFORK_CHILD

STARTED_KEYS = ['application_object', 'application_start', 'callable_object', 'daemon_connects',
                'daemon_restarts', 'daemon_start', 'queue_start', 'request_data', 'request_environ',
                'request_id', 'request_start', 'server_pid', 'thread_id']
FINISHED_KEYS = ['application_finish', 'application_time', 'cpu_system_time', 'cpu_time', 'cpu_user_time',
                 'daemon_start', 'gil_wait_count', 'gil_wait_time', 'input_length', 'input_reads',
                 'input_time', 'output_length', 'output_time', 'output_writes', 'queue_start',
                 'request_data', 'request_id', 'request_start', 'server_pid', 'status', 'thread_id']


class Client(OneConnection):
    """The events of one process, through one connection."""

    def events(self, prefix, request_id):
        return [e for e in self.json(prefix + '/log') if e.get('request_id') == request_id]


server = connected_server_fixture(CONF, 'events', Client)


def test_normal_request_events(server):
    a, c = server
    info = c.json('/main/info')
    assert info == {'decorated': True, 'shutdown_returns': True, 'callbacks': 3, 'shutdown_callbacks': 1,
                    'same_list': True, 'alias': True, 'group': ''}
    r = c.json('/main/ok')
    rid = r['request_id']
    assert rid and r['same'] and r['active'] and rid in r['active_ids']
    assert r['started'] == 'yes'  # set by the request_started callback in the same dict
    events = c.events('/main', rid)
    assert [e['name'] for e in events] == ['request_started', 'response_started', 'request_finished']
    started, response, finished = events
    assert started['keys'] == STARTED_KEYS
    assert started['path'] == '/ok' and started['app_is_application']
    assert started['callable_object'] == 'application'
    if a.mode == 'daemon':
        # What the Apache child told the daemon about the hand-off.
        assert started['daemon_connects'] >= 1 and started['daemon_restarts'] == 0
        assert started['server_pid'] != r['pid'] and started['server_pid'] in a.children()
        assert started['request_start'] <= started['queue_start'] <= started['daemon_start'] \
            <= started['application_start']
    else:
        assert started['daemon_connects'] == 0 and started['daemon_restarts'] == 0
        assert started['server_pid'] == r['pid']
        assert started['queue_start'] == started['daemon_start'] == 0.0
    assert isinstance(started['thread_id'], int) and started['thread_id'] >= 1
    assert 0 < started['request_start'] <= started['application_start']
    assert response['keys'] == ['exception_info', 'request_data', 'request_id', 'response_headers',
                                'response_status']
    assert response['response_status'] == '200 OK'
    assert response['response_headers'] == [['Content-Type', 'application/json']]
    assert response['exception_info'] is None
    assert finished['keys'] == FINISHED_KEYS
    assert finished['status'] == 200
    assert finished['output_length'] == len(json.dumps(r)) or finished['output_length'] > 50
    assert finished['output_writes'] == 1
    assert finished['input_reads'] == 0 and finished['input_length'] == 0
    assert finished['thread_id'] == started['thread_id']
    assert finished['application_finish'] >= started['application_start']
    assert 0 <= finished['application_time'] < 10
    # One dict for the whole request: the events' request_data is the app's.
    assert started['data_id'] == response['data_id'] == finished['data_id'] == r['data_id']
    assert finished['data'] == {'started': 'yes', 'app': 'set'}
    # Over: no longer active.
    assert rid not in c.json('/main/ok')['active_ids']


def test_exception_events(server):
    a, c = server
    c.get('/main/raise', status=500)
    finished = [e for e in c.json('/main/log') if e['name'] == 'request_finished' and e['status'] == 500]
    rid = finished[-1]['request_id']
    events = c.events('/main', rid)
    assert [e['name'] for e in events] == ['request_started', 'request_exception', 'request_finished']
    exc = events[1]
    assert exc['keys'] == ['exception_info', 'request_data', 'request_id']
    assert exc['exception'] == 'ValueError: application failed on purpose' and exc['has_tb']
    assert events[2]['status'] == 500 and events[2]['output_length'] == 0
    assert 'application failed on purpose' in a.error_log()


def test_returned_dict_is_merged_and_replaces_the_application(server):
    a, c = server
    assert c.get('/main/wrap') == b'wrapped'
    started = [e for e in c.json('/main/log') if e['name'] == 'request_started' and e['path'] == '/wrap']
    # `record` is subscribed before `merger`: it sees the original payload.
    assert started[-1]['app_is_application'] and 'merged' not in started[-1]


def test_failing_callback_is_logged_and_request_succeeds(server):
    a, c = server
    r = c.json('/main/cbraise')
    assert r['same'] and r['active']
    assert a.wait_for_log("WSGI0112: RuntimeError exception raised by event callback for 'request_started'.")
    log = a.error_log()
    assert 'RuntimeError: event callback failed on purpose' in log
    assert 'Traceback (most recent call last):' in log
    names = [e['name'] for e in c.events('/main', r['request_id'])]
    assert names == ['request_started', 'response_started', 'request_finished']


def test_sub_interpreter_has_its_own_events(server):
    a, c = server
    main = c.json('/main/ok')['request_id']
    sub = c.json('/sub/ok')['request_id']
    info = c.json('/sub/info')
    assert info['group'] == 'other' and info['callbacks'] == 3
    main_ids = {e.get('request_id') for e in c.json('/main/log')}
    sub_ids = {e.get('request_id') for e in c.json('/sub/log')}
    assert main in main_ids and main not in sub_ids
    assert sub in sub_ids and sub not in main_ids
    assert [e['name'] for e in c.events('/sub', sub)] == ['request_started', 'response_started',
                                                          'request_finished']


def test_request_data_without_subscribers(server):
    a, c = server
    r = c.json('/quiet/')
    assert r == {'at_import': 'no active request for thread', 'other_thread': 'no active request for thread',
                 'active': True, 'callbacks': 0}


def test_process_stopping_at_stop(server):
    """Runs last in the module: stops this server."""
    a, c = server
    c.json('/main/ok')
    c.json('/sub/ok')
    c.close()
    import time
    time.sleep(1)  # the event MPM's lingering close (see test_lifecycle)
    a.stop()
    log = a.error_log()
    reason = 'shutdown_signal' if a.mode == 'daemon' else ''
    for group in ('', 'other'):
        assert ("shutdown callback: process_stopping reason=%r group=%r" % (reason, group)) in log, log[-3000:]
        assert ("event callback: process_stopping reason=%r group=%r" % (reason, group)) in log


def test_process_stopping_without_destroy_interpreter(start_apache):
    """WSGIDestroyInterpreter Off: no atexit, but process_stopping still runs."""
    a = start_apache('WSGIDestroyInterpreter Off\n' + CONF, mpm='event', name='events-nodestroy')
    c = Client(a)
    c.json('/main/ok')
    c.close()
    import time
    time.sleep(1)
    a.stop()
    assert "shutdown callback: process_stopping reason='' group=''" in a.error_log()

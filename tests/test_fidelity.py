"""Fidelity to mod_wsgi 6.0.5 where applications and tests match texts:
start_response()'s exceptions (types and messages, naming the offending
value, as wsgi_adapter.c, wsgi_convert.c and wsgi_validate.c raise them),
and mod_wsgi.subscribe_signals() / signal_callbacks (SIGHUP and SIGUSR2 in
daemon processes, published as the process_signal event)."""
import json
import os
import signal
import time

import pytest

from conftest import server_fixture

CONF = 'WSGIScriptAlias /f @APPS@/fidelity.wsgi\n'

server = server_fixture(CONF, mpms=['event'])

E = '\\u20ac'
REFUSED = {
    'status-int': 'TypeError: must be str, not int',
    'status-latin1': "UnicodeEncodeError: 'latin-1' codec can't encode character '%s' in position 6: "
                     "ordinal not in range(256)" % E,
    'status-word': "ValueError: status code must be a 3 digit integer: b'OK'",
    'status-four-digits': "ValueError: status code must be a 3 digit integer: b'2000 OK'",
    'status-no-space': "ValueError: no space following status code: b'200OK'",
    'status-crlf': "ValueError: control character in status reason phrase: b'200 OK\\r\\nX-Injected: yes'",
    'headers-tuple': 'TypeError: start_response() argument 2 must be list, not tuple',
    'headers-dict': 'TypeError: start_response() argument 2 must be list, not dict',
    'header-list': 'TypeError: each header must be a 2-tuple, not list',
    'header-triple': 'ValueError: each header must be a 2-tuple, got length 3',
    'name-bytes': 'TypeError: must be str, not bytes',
    'value-int': 'TypeError: must be str, not int',
    'name-empty': 'ValueError: header name is empty',
    'name-crlf': "ValueError: control character in header name: b'X-A\\r\\n'",
    'name-space': "ValueError: space character in header name: b'X A'",
    'value-crlf': "ValueError: carriage return/line feed character in header value: "
                  "b'a\\r\\nX-Injected: yes'",
    'value-latin1': "UnicodeEncodeError: 'latin-1' codec can't encode character '%s' in position 3: "
                    "ordinal not in range(256)" % E,
    'name-latin1': "UnicodeEncodeError: 'latin-1' codec can't encode character '%s' in position 2: "
                   "ordinal not in range(256)" % E,
    'exc-info-str': "RuntimeError: start_response() argument 'exc_info' must be a 3-tuple or None",
}


@pytest.mark.parametrize('op', sorted(REFUSED))
def test_start_response_refusals_have_mod_wsgi_texts(server, op):
    r = server.get('/f/' + op)
    assert (r.status, r.body.decode()) == (200, REFUSED[op])
    assert r.header('X-Injected') is None


def test_second_call_after_output(server):
    body = server.get('/f/twice-after-output').body.decode()
    assert body == '[RuntimeError: start_response() called more than once without exc_info]'


def test_exc_info_not_a_triple_after_output(server):
    body = server.get('/f/exc-info-pair-after-output').body.decode()
    assert body == '[TypeError: function takes exactly 3 arguments (2 given)]'


def test_bad_content_length_fails_when_output_starts(server):
    assert server.get('/f/content-length').body == b"ValueError: invalid Content-Length header value: 'twelve'"
    assert server.get('/f/content-length-returned').status == 500
    assert server.wait_for_log("ValueError: invalid Content-Length header value: '-1'")


def test_write_texts(server):
    assert server.get('/f/write-str').body == b'TypeError: write() argument must be bytes, not str'


def test_calls_after_the_request_completed(server):
    # One process: event MPM's single child, or the one daemon process.
    assert server.get('/f/keep').body == b'kept'
    assert server.get('/f/use-kept').body.decode() == (
        'RuntimeError: start_response() called after request completed\n'
        'RuntimeError: write() called after request completed')


def test_logged_texts(server):
    assert server.get('/f/no-start-response').status == 500
    assert server.wait_for_log(
        'RuntimeError: start_response() must be called before response content is produced')
    assert server.get('/f/str-item').status == 500
    assert server.wait_for_log('TypeError: response iterable must yield bytes, not str')


def signals_state(server):
    r = server.get('/f/signals')
    assert r.status == 200
    return json.loads(r.body)


def wait_for_signals(server, n):
    deadline = time.time() + 10
    while True:
        s = signals_state(server)
        if len(s['signals']) >= n or time.time() > deadline:
            return s
        time.sleep(0.1)


def test_subscribe_signals(server):
    s = signals_state(server)
    assert s['registered']  # returned the callback (usable as a decorator)
    if server.mode == 'embedded':
        # mod_wsgi 6: not registered outside daemon processes; the caller is logged.
        assert s['callbacks'] == 0
        assert server.wait_for_log('mod_wsgi.subscribe_signals() called outside daemon mode; the callback '
                                   'will not be invoked. Signal callbacks are only delivered in daemon mode '
                                   'processes.')
        assert 'in <module>' in server.error_log()
        return
    assert s['process_group'] == 'testd' and s['callbacks'] == 1 and s['signals'] == []
    pid = s['pid']
    os.kill(pid, signal.SIGUSR2)
    s = wait_for_signals(server, 1)
    # subscribe_events callbacks first (the dict one returns is merged), then
    # subscribe_signals ones, on a thread that serves no request.
    assert s['events'] == [{'signame': 'SIGUSR2', 'signum': int(signal.SIGUSR2)}]
    assert s['signals'] == [{'name': 'process_signal', 'request_thread': False,
                             'kw': {'signame': 'SIGUSR2', 'signum': int(signal.SIGUSR2),
                                    'seen_by_events': True}}]
    os.kill(pid, signal.SIGHUP)
    s = wait_for_signals(server, 2)
    assert s['signals'][1]['kw'] == {'signame': 'SIGHUP', 'signum': int(signal.SIGHUP), 'seen_by_events': True}
    # The process keeps serving: neither signal stops it.
    assert s['pid'] == pid
    assert 'Stopping process' not in server.error_log()

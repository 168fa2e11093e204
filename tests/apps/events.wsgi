"""mod_wsgi's events API: records every event of this interpreter."""
import json
import os
import sys

import mod_wsgi

EVENTS = []


@mod_wsgi.subscribe_events
def record(name, **kw):
    entry = {'name': name, 'keys': sorted(kw)}
    for key in ('request_id', 'thread_id', 'callable_object', 'response_status', 'status',
                'output_length', 'output_writes', 'input_reads', 'input_length', 'daemon_connects',
                'daemon_restarts', 'queue_start', 'daemon_start', 'server_pid'):
        if key in kw:
            entry[key] = kw[key]
    for key in ('request_start', 'application_start', 'application_finish', 'application_time'):
        if key in kw:
            entry[key] = kw[key]
    if 'request_data' in kw:
        entry['data_id'] = id(kw['request_data'])
        entry['data'] = {k: v for k, v in kw['request_data'].items() if isinstance(v, (str, int))}
    if 'request_environ' in kw:
        entry['path'] = kw['request_environ'].get('PATH_INFO')
        entry['app_is_application'] = kw['application_object'] is application
    if 'response_headers' in kw:
        entry['response_headers'] = [list(h) for h in kw['response_headers']]
        entry['exception_info'] = kw['exception_info']
    if name == 'request_exception':
        etype, value, tb = kw['exception_info']
        entry['exception'] = '%s: %s' % (etype.__name__, value)
        entry['has_tb'] = tb is not None
    if 'merged' in kw:
        entry['merged'] = kw['merged']
    if name == 'request_started':
        kw['request_data']['started'] = 'yes'
    if name == 'process_stopping':
        print('event callback: process_stopping reason=%r group=%r'
              % (kw['shutdown_reason'], mod_wsgi.application_group), file=sys.stderr)
    EVENTS.append(entry)


def merger(name, **kw):
    """A returned dict is merged into the payload the next callbacks get;
    for request_started, a replaced application_object is called."""
    if name == 'request_started' and kw['request_environ'].get('PATH_INFO') == '/wrap':
        return {'merged': 'by merger', 'application_object': wrapped}
    return None


def failing(name, **kw):
    if name == 'request_started' and kw['request_environ'].get('PATH_INFO') == '/cbraise':
        raise RuntimeError('event callback failed on purpose')


def on_shutdown(name, **kw):
    print('shutdown callback: %s reason=%r group=%r'
          % (name, kw['shutdown_reason'], mod_wsgi.application_group), file=sys.stderr)


mod_wsgi.subscribe_events(merger)
mod_wsgi.subscribe_events(failing)
SHUTDOWN_RETURNS = mod_wsgi.subscribe_shutdown(on_shutdown) is on_shutdown


def wrapped(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'wrapped']


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/raise':
        raise ValueError('application failed on purpose')
    if path == '/log':
        body = json.dumps(EVENTS).encode()
    elif path == '/info':
        body = json.dumps({
            'decorated': record.__name__ == 'record',
            'shutdown_returns': SHUTDOWN_RETURNS,
            'callbacks': len(mod_wsgi.event_callbacks),
            'shutdown_callbacks': len(mod_wsgi.shutdown_callbacks),
            'same_list': mod_wsgi.event_callbacks[0] is record,
            'alias': sys.modules['mod_wsgi_rs'] is mod_wsgi,
            'group': mod_wsgi.application_group,
        }).encode()
    else:
        data = mod_wsgi.request_data()
        data['app'] = 'set'
        rid = environ.get('mod_wsgi.request_id')
        body = json.dumps({
            'request_id': rid,
            'data_id': id(data),
            'same': mod_wsgi.request_data() is data,
            'active': mod_wsgi.active_requests.get(rid) is data,
            'active_ids': list(mod_wsgi.active_requests),
            'started': data.get('started'),
            'pid': os.getpid(),
        }).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]

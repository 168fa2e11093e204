"""Calls mod_wsgi 6's metrics API: start_recording_metrics(),
request_metrics(), process_metrics()."""
import json
import time

import mod_wsgi


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    status, body = '200 OK', b''
    if path == '/start':
        mod_wsgi.start_recording_metrics()
        body = b'started'
    elif path == '/request_metrics':
        body = json.dumps(mod_wsgi.request_metrics()).encode()
    elif path == '/process_metrics':
        body = json.dumps(mod_wsgi.process_metrics()).encode()
    elif path.startswith('/sleep'):
        time.sleep(float(environ.get('QUERY_STRING') or '0.2'))
        body = b'slept'
    elif path == '/missing':
        status, body = '404 Not Found', b'nothing here'
    elif path == '/post':
        body = environ['wsgi.input'].read()
    elif path == '/raise':
        raise RuntimeError('metrics test failure')
    start_response(status, [('Content-Type', 'text/plain')])
    return [body]

"""For the telemetry service tests: says which process serves it, sleeps,
and shows what the metrics API returns while telemetry is on."""
import json
import os
import time

import mod_wsgi


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    status, body = '200 OK', b''
    if path == '/pid':
        body = str(os.getpid()).encode()
    elif path == '/metrics':
        mod_wsgi.start_recording_metrics()
        body = json.dumps([mod_wsgi.request_metrics(), mod_wsgi.process_metrics()]).encode()
    elif path == '/sleep':
        time.sleep(float(environ.get('QUERY_STRING') or '0.4'))
        body = b'slept'
    elif path == '/missing':
        status, body = '404 Not Found', b'nothing here'
    start_response(status, [('Content-Type', 'text/plain')])
    return [body]

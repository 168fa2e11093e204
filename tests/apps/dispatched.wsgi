"""The application a dispatch script routes (tests/test_dispatch.py)."""
import json
import os


def _report(environ, start_response, name):
    out = {'callable': name, 'pid': os.getpid(),
           'process_group': environ['mod_wsgi.process_group'],
           'application_group': environ['mod_wsgi.application_group'],
           'callable_object': environ.get('mod_wsgi.callable_object'),
           'request_rec': 'apache.request_rec' in environ}
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(out).encode()]


def application(environ, start_response):
    return _report(environ, start_response, 'application')


def other(environ, start_response):
    return _report(environ, start_response, 'other')

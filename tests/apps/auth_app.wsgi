"""The application behind the auth tests: who it served, and where it ran."""
import json
import os


def application(environ, start_response):
    body = json.dumps({
        'REMOTE_USER': environ.get('REMOTE_USER'),
        'AUTH_TYPE': environ.get('AUTH_TYPE'),
        'pid': os.getpid(),
        'process_group': environ.get('mod_wsgi.process_group'),
    }).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]

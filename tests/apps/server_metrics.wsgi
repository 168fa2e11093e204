"""mod_wsgi.server_metrics() as JSON."""
import json

import mod_wsgi


def application(environ, start_response):
    body = json.dumps(mod_wsgi.server_metrics()).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]

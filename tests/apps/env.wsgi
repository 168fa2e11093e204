"""Returns the environ as JSON: str values as-is, others as {'type', 'repr'}."""
import json


def application(environ, start_response):
    out = {}
    for k, v in environ.items():
        out[k] = v if type(v) is str else {'type': type(v).__name__, 'repr': repr(v)}
    body = json.dumps(out, sort_keys=True).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]

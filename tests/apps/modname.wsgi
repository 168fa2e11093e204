import json
import sys


def application(environ, start_response):
    body = json.dumps({'name': __name__, 'file': __file__,
                       'hashlib_loaded': 'hashlib' in sys.modules}).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]

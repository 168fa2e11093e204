"""Reports the interpreter a request runs in (application groups)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import grouplib  # noqa: E402
import mod_wsgi  # noqa: E402

LOADS = getattr(sys, '_groups_loads', 0) + 1
sys._groups_loads = LOADS
VERSION = 1


def application(environ, start_response):
    grouplib.hits += 1
    q = environ.get('QUERY_STRING', '')
    out = {
        'environ_group': environ['mod_wsgi.application_group'],
        'module_group': mod_wsgi.application_group,
        'process_group': environ['mod_wsgi.process_group'],
        'modules_id': id(sys.modules),
        'hits': grouplib.hits,
        'loads': LOADS,
        'version': VERSION,
        'pid': os.getpid(),
        'module_name': __name__,
    }
    if q == 'hostile':
        # Internal functions called with the wrong arguments: clean errors.
        errors = []
        for call in (lambda: mod_wsgi._rs_input_read(42, 1),
                     lambda: mod_wsgi._rs_log_write(None, 0, b'bytes'),
                     lambda: mod_wsgi._rs_log_info(3),
                     lambda: start_response.func(object(), '200 OK', []),
                     lambda: start_response.func('x', 200, None)):
            try:
                call()
                errors.append(None)
            except Exception as e:
                errors.append('%s: %s' % (type(e).__name__, e))
        out['errors'] = errors
    elif q == 'panic':
        try:
            mod_wsgi._rs_test_panic()
            out['panic'] = None
        except BaseException as e:
            out['panic'] = '%s.%s: %s' % (type(e).__module__, type(e).__name__, e)
    elif q.startswith('import='):
        __import__(q[7:])
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]

"""A WSGIDispatchScript (tests/test_dispatch.py): the query string chooses
the process group (pg=), application group (ag=) and callable (call=);
raise=1 makes process_group() raise; env=1 logs the hooks' environ."""
import json
from urllib.parse import parse_qs


def _q(environ, name):
    return parse_qs(environ.get('QUERY_STRING', '')).get(name, [None])[0]


def process_group(environ):
    if _q(environ, 'raise'):
        raise RuntimeError('dispatch failed on purpose')
    if _q(environ, 'env'):
        keys = ['mod_wsgi.process_group', 'mod_wsgi.application_group', 'REQUEST_URI',
                'HTTP_X_DISPATCH', 'SCRIPT_NAME']
        seen = {k: environ.get(k) for k in keys}
        seen['has_callable_object'] = 'mod_wsgi.callable_object' in environ
        seen['mod_wsgi.version'] = list(environ.get('mod_wsgi.version', ()))
        seen['apache.version'] = list(environ.get('apache.version', ()))
        seen['has_input'] = 'wsgi.input' in environ
        seen['request_rec'] = repr(environ.get('apache.request_rec'))
        environ['wsgi.errors'].write('dispatch environ: %s\n' % json.dumps(seen))
        environ['wsgi.errors'].flush()
    if _q(environ, 'bytes'):
        return _q(environ, 'pg').encode('latin-1')
    return _q(environ, 'pg')


def application_group(environ):
    return _q(environ, 'ag')


def callable_object(environ):
    if _q(environ, 'badtype'):
        return 42
    return _q(environ, 'call')

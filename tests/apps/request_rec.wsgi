"""Reports apache.request_rec (WSGIPassApacheRequest, tests/test_dispatch.py),
and that a capsule kept from an earlier request is inert: our own
functions refuse it instead of using it."""
import json

KEPT = []


def application(environ, start_response):
    cap = environ.get('apache.request_rec')
    out = {'present': cap is not None, 'type': type(cap).__name__, 'repr': repr(cap)}
    if KEPT:
        old = KEPT[-1]
        out['old_repr'] = repr(old)
        try:
            type(environ['wsgi.errors'])(old, 0, '<x>').write('must not be written\n')
            out['old_use'] = 'accepted'
        except Exception as e:
            out['old_use'] = 'refused: %s' % type(e).__name__
    if cap is not None:
        KEPT.append(cap)
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(out).encode()]

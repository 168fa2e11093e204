"""Edge-case behaviours for tests/test_edge_cases.py, selected by PATH_INFO."""
import sys
import time


def log(environ, text):
    print('edge app: %s %s' % (environ['PATH_INFO'], text), file=sys.stderr)


def read_all(environ, step=100):
    """Reads wsgi.input in small pieces; returns (bytes read, error or None)."""
    got = 0
    try:
        while True:
            data = environ['wsgi.input'].read(step)
            if not data:
                return got, None
            got += len(data)
    except OSError as e:
        return got, e


def application(environ, start_response):
    op = environ['PATH_INFO']
    text = [('Content-Type', 'text/plain')]
    if op in ('/read', '/read-swallow'):
        # Records every call; reports a complete body only when it read one.
        log(environ, 'called with CONTENT_LENGTH=%s' % environ.get('CONTENT_LENGTH'))
        got, error = read_all(environ)
        if error is not None:
            log(environ, 'read error after %d bytes: %s: %s' % (got, type(error).__name__, error))
            if op == '/read':
                raise error
            start_response('200 OK', text)
            return [b'swallowed read error after %d bytes' % got]
        log(environ, 'complete body of %d bytes' % got)
        start_response('200 OK', text)
        return [b'complete body of %d bytes' % got]
    if op == '/x-foo':
        start_response('200 OK', text)
        return [ascii(environ.get('HTTP_X_FOO')).encode()]
    if op == '/chunks':
        n = int(environ.get('QUERY_STRING') or '20')

        def gen():
            for i in range(n):
                yield b'chunk %03d ' % i + b'z' * 1000 + b'\n'
                time.sleep(0.005)
        start_response('200 OK', text)
        return gen()
    if op == '/slow':
        def gen():
            yield b'first part\n'
            time.sleep(1.5)
            yield b'second part\n'
        start_response('200 OK', text)
        return gen()
    start_response('404 Not Found', text)
    return [b'unknown op ' + op.encode()]

"""Response behaviours, selected by PATH_INFO."""
import sys
import time

closed = []


class Body:
    """An iterable with close(), recording that close() was called."""

    def __init__(self, name, items, fail_at=None, slow=0):
        self.name, self.items, self.fail_at, self.slow = name, items, fail_at, slow

    def __iter__(self):
        for i, item in enumerate(self.items):
            if i == self.fail_at:
                raise ValueError('failure inside the response iterable')
            if self.slow:
                time.sleep(self.slow)
            yield item

    def close(self):
        closed.append(self.name)
        print('close called for %s' % self.name, file=sys.stderr)


def forever():
    i = 0
    try:
        while True:
            yield b'chunk %d\n' % i + b'x' * 8192
            i += 1
            time.sleep(0.01)
    finally:
        print('generator finally ran after %d chunks' % i, file=sys.stderr)


kept = {}


def use_kept():
    """Uses the previous request's wsgi.input and write(): both must fail cleanly."""
    out = []
    for name, call in (('read', lambda: kept['input'].read()), ('write', lambda: kept['write'](b'late'))):
        try:
            call()
            out.append('%s: no error' % name)
        except Exception as e:
            out.append('%s: %s: %s' % (name, type(e).__name__, e))
    return '\n'.join(out)


def application(environ, start_response):
    op = environ['PATH_INFO']
    text = [('Content-Type', 'text/plain')]
    if op == '/keep':
        kept['input'], kept['write'] = environ['wsgi.input'], start_response('200 OK', text)
        return [b'kept']
    if op == '/use-kept':
        start_response('200 OK', text)
        return [use_kept().encode()]
    if op == '/use-kept-in-thread':
        import threading
        result = []
        t = threading.Thread(target=lambda: result.append(use_kept()))
        t.start()
        t.join()
        start_response('200 OK', text)
        return [result[0].encode()]
    if op == '/list':
        start_response('200 OK', text)
        return [b'a', b'b', b'c']
    if op == '/tuple':
        start_response('201 Created', text)
        return (b'x', b'y')
    if op == '/empty':
        start_response('204 No Content', [])
        return []
    if op == '/generator':
        start_response('200 OK', text)
        return (b'line %d\n' % i for i in range(100))
    if op == '/big':
        start_response('200 OK', text)
        return [b'z' * (4 * 1024 * 1024)]
    if op == '/write':
        write = start_response('200 OK', text)
        write(b'written ')
        return [b'returned']
    if op == '/close':
        start_response('200 OK', text)
        return Body('close-ok', [b'one', b'two'])
    if op == '/closed':
        start_response('200 OK', text)
        return [' '.join(closed).encode()]
    if op == '/raise':
        raise RuntimeError('the application failed on purpose')
    if op == '/raise-in-iterable':
        start_response('200 OK', text)
        return Body('close-fail-before', [b'one'], fail_at=0)
    if op == '/raise-after-output':
        start_response('200 OK', text)
        return Body('close-fail-after', [b'one', b'two'], fail_at=1)
    if op == '/str-item':
        start_response('200 OK', text)
        return ['not bytes']
    if op == '/str-item-after':
        start_response('200 OK', text)
        return Body('close-str-after', [b'ok', 'not bytes'])
    if op == '/bad-status':
        start_response(environ['QUERY_STRING'].replace('%20', ' ').replace('%0D%0A', '\r\n'), text)
        return [b'never']
    if op == '/bad-header-crlf':
        start_response('200 OK', [('X-Evil', 'a\r\nX-Injected: yes')])
        return [b'never']
    if op == '/bad-header-type':
        start_response('200 OK', [('X-Bytes', b'value')])
        return [b'never']
    if op == '/bad-header-list':
        start_response('200 OK', (('X-A', 'b'),))
        return [b'never']
    if op == '/hop-by-hop':
        start_response('200 OK', [('Connection', 'close')])
        return [b'never']
    if op == '/bad-content-length':
        start_response('200 OK', [('Content-Length', 'twelve')])
        return [b'never']
    if op == '/cl-truncate':
        start_response('200 OK', text + [('Content-Length', '5')])
        return Body('truncate', [b'01234', b'56789'])
    if op == '/cl-short':
        start_response('200 OK', text + [('Content-Length', '10')])
        return Body('short', [b'01234'])
    if op == '/headers':
        start_response('200 OK', text + [('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2'), ('X-Multi', 'one'),
                                          ('WWW-Authenticate', 'Basic realm="x"'), ('X-Latin', 'caf\xe9')])
        return [b'headers']
    if op == '/status':
        start_response('418 I\'m a teapot', text)
        return [b'teapot']
    if op == '/exc-info':
        try:
            raise KeyError('handled')
        except KeyError:
            start_response('200 OK', text)
            start_response('503 Service Unavailable', text, sys.exc_info())
        return [b'replaced by exc_info']
    if op == '/exc-info-after-write':
        write = start_response('200 OK', text)
        write(b'partial')
        try:
            raise KeyError('too late')
        except KeyError:
            start_response('500 Error', text, sys.exc_info())
        return [b'never']
    if op == '/twice-after-output':
        write = start_response('200 OK', text)
        write(b'partial')
        start_response('200 OK', text)
        return [b'never']
    if op == '/twice-before-output':
        start_response('200 OK', text)
        start_response('201 Created', text)
        return [b'never']
    if op == '/bad-exc-info':
        start_response('200 OK', text, 'not a tuple')
        return [b'never']
    if op == '/no-start-response':
        return [b'no headers']
    if op == '/stream':
        start_response('200 OK', text)
        return Body('stream', [b'first chunk\n', b'second chunk\n'], slow=0)
    if op == '/slow-stream':
        def gen():
            yield b'first chunk of a slow stream\n'
            time.sleep(1.5)
            yield b'second chunk\n'
        start_response('200 OK', text)
        return gen()
    if op == '/forever':
        start_response('200 OK', text)
        return forever()
    start_response('404 Not Found', text)
    return [b'unknown op ' + op.encode()]

"""Applications that do what no application should, to show the process
survives: calling the module's internal functions with wrong arguments, and
using a request's objects from threads of their own, concurrently with the
thread serving the request."""
import datetime
import gc
import sys
import threading

KEPT = {}


def internal_functions():
    """Every builtin function of ours an application can reach."""
    seen = {}
    for obj in gc.get_objects():
        name = getattr(obj, '__name__', '')
        if type(obj).__name__ == 'builtin_function_or_method' and name.startswith(('_rs_', '_wsgi_rs')):
            seen[id(obj)] = obj
    mod = sys.modules['mod_wsgi']
    for name in dir(mod):
        if name.startswith('_rs_'):
            f = getattr(mod, name)
            seen[id(f)] = f
    return list(seen.values())


def bad_arguments():
    # A capsule of someone else's: a real PyCapsule with another name.
    foreign = datetime.datetime_CAPI
    values = [0, 8, -1, 2 ** 64, None, 'x', b'x', object(), foreign, 1.5, [], {}]
    yield ()
    for v in values:
        yield (v,)
        for w in values[:6]:
            yield (v, w)
            yield (v, w, 'text')
            yield (v, w, 'text', None)


def probe(environ, start_response):
    funcs = internal_functions()
    calls = errors = 0
    for f in funcs:
        for args in bad_arguments():
            calls += 1
            try:
                f(*args)
            except BaseException:
                errors += 1
    # The Python classes wrapping them, given wrong contexts.
    mod = sys.modules['mod_wsgi']
    for ctx in (None, 8, datetime.datetime_CAPI):
        for attempt in (lambda: mod.Input(ctx).read(), lambda: mod.Input(ctx).readline(),
                        lambda: mod.Log(ctx, 0, 'x').write('x\n'), lambda: mod.Log(ctx, 7, 'x').flush()):
            calls += 1
            try:
                attempt()
            except BaseException:
                errors += 1
    names = sorted({f.__name__ for f in funcs})
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%d functions %d calls %d errors\n%s\n' % (len(funcs), calls, errors, ' '.join(names))).encode()]


def threads(environ, start_response):
    """start_response from one thread, write() from this one while another
    reads the body: every Apache call is serialised by the module."""
    inp = environ['wsgi.input']
    result = {}

    def starter():
        result['write'] = start_response('200 OK', [('Content-Type', 'text/plain')])

    def reader():
        try:
            chunks = []
            while True:
                b = inp.read(7919)
                if not b:
                    break
                chunks.append(b)
            result['body'] = b''.join(chunks)
        except BaseException as e:
            result['body'] = repr(e).encode()

    t = threading.Thread(target=starter)
    t.start()
    t.join()
    write = result['write']
    r = threading.Thread(target=reader)
    r.start()
    writers = [threading.Thread(target=lambda: [write(b'w' * 1000) for _ in range(50)]) for _ in range(2)]
    for w in writers:
        w.start()
    for i in range(100):
        write(b'x' * 1000)
    for w in writers:
        w.join()
    r.join()
    write(b'\nlen=%d\n' % len(result['body']))
    return []


def errors_later(environ, start_response):
    """wsgi.errors used after its request is over raises; the next request reports how."""
    errors = environ['wsgi.errors']
    done = threading.Event()

    def later():
        done.wait()
        try:
            errors.write('too late\n')
            KEPT['errors'] = 'no error'
        except Exception as e:
            KEPT['errors'] = '%s: %s' % (type(e).__name__, e)

    threading.Thread(target=later, daemon=True).start()
    errors.write('in time\n')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    try:
        yield b'ok'
    finally:
        KEPT['event'] = done


def errors_report(environ, start_response):
    ev = KEPT.get('event')
    if ev is not None:
        ev.set()
    for _ in range(100):
        if 'errors' in KEPT:
            break
        threading.Event().wait(0.02)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [KEPT.get('errors', 'nothing').encode()]


def close_raises(environ, start_response):
    class Body:
        def __iter__(self):
            yield b'all of '
            yield b'the body'

        def close(self):
            raise ValueError('close failed after the whole body')

    start_response('200 OK', [('Content-Type', 'text/plain')])
    return Body()


def burst_then_wait(environ, start_response):
    """Blocks faster than a slow client takes them, then a pause: every block
    before the pause must reach the client during the pause (PEP 3333: no
    block is held back while the application works on the next one)."""
    import time
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    for _ in range(200):
        yield b'b' * 16384
    time.sleep(3)
    yield b'end'


def sleepy(environ, start_response):
    """Each block must reach the client while the application sleeps."""
    import time
    start_response('200 OK', [('Content-Type', 'text/plain')])
    for i in range(3):
        yield b'block %d\n' % i
        time.sleep(1)


ROUTES = {'/burst': burst_then_wait, '/sleepy': sleepy, '/probe': probe, '/threads': threads, '/errors-later': errors_later,
          '/errors-report': errors_report, '/close-raises': close_raises}


def application(environ, start_response):
    return ROUTES[environ['PATH_INFO']](environ, start_response)

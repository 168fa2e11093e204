def application(environ, start_response):
    """Reads the request body through wsgi.input in 64 KiB reads."""
    inp = environ['wsgi.input']
    n = 0
    while True:
        b = inp.read(65536)
        if not b:
            break
        n += len(b)
    body = b'%d' % n
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]

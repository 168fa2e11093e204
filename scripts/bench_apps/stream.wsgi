CHUNK = b'x' * 1024


def application(environ, start_response):
    """A generator of 100 blocks of 1 KiB (each must reach the client at once)."""
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    for _ in range(100):
        yield CHUNK

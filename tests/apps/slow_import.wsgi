"""Its import hangs (a stuck framework setup): startup-timeout's case."""
import time

time.sleep(60)


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'never']

import sys

print('preload.wsgi imported', file=sys.stderr)


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'preloaded']

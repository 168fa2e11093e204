"""Echoes the method the application sees (X-Method), with a compressible
body, for WSGIMapHEADToGET."""


def application(environ, start_response):
    body = b'the same line, again and again\n' * 200
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('X-Method', environ['REQUEST_METHOD']),
                              ('X-Sendfile-Flag', environ.get('mod_wsgi.enable_sendfile', '?'))])
    return [body]

"""The Quick start example: a tiny WSGI app served by mod_wsgi_rs."""
import html
import sys

import mod_wsgi_rs


def application(environ, start_response):
    # /healthz: for load balancers and container probes (docker/).
    plain = {'/hello': b'Hello World!', '/healthz': b'ok'}.get(environ['PATH_INFO'])
    if plain is not None:
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(plain)))])
        return [plain]
    rows = ''.join('<tr><th>%s</th><td>%s</td></tr>' % (html.escape(k), html.escape(str(environ[k])))
                   for k in sorted(environ))
    page = ('<!doctype html><title>mod_wsgi_rs</title>'
            '<h1>Served by mod_wsgi_rs %s (Python %s)</h1>'
            '<p><a href="%s/hello">%s/hello</a></p><table>%s</table>'
            % ('.'.join(map(str, mod_wsgi_rs.mod_wsgi_rs_version)), sys.version.split()[0],
               html.escape(environ['SCRIPT_NAME']), html.escape(environ['SCRIPT_NAME']), rows))
    body = page.encode('utf-8')
    start_response('200 OK', [('Content-Type', 'text/html; charset=utf-8'),
                              ('Content-Length', str(len(body)))])
    return [body]

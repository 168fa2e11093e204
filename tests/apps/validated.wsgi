"""An application wrapped in wsgiref.validate.validator: any PEP 3333
violation by the server raises AssertionError or warns (both reach the log)."""
import hashlib
import warnings
from wsgiref.validate import validator

warnings.simplefilter('always')


def inner(environ, start_response):
    size = environ.get('CONTENT_LENGTH')
    body = b''
    if environ['REQUEST_METHOD'] == 'POST':
        inp = environ['wsgi.input']
        while True:
            chunk = inp.read(65536)
            if not chunk:
                break
            body += chunk
    out = ('%s|%s|%s|%s|%d|%s' % (environ['REQUEST_METHOD'], environ['SCRIPT_NAME'], environ['PATH_INFO'],
                                  environ['QUERY_STRING'], len(body), hashlib.sha256(body).hexdigest()))
    out = out.encode('latin-1')
    start_response('200 OK', [('Content-Type', 'text/plain; charset=latin-1'), ('Content-Length', str(len(out)))])
    return [out]


application = validator(inner)

"""wsgi.input behaviours, selected by PATH_INFO."""
import hashlib
import json


def application(environ, start_response):
    inp = environ['wsgi.input']
    op = environ['PATH_INFO']
    result = {}
    try:
        if op == '/read':
            data = inp.read()
            result = {'len': len(data), 'sha256': hashlib.sha256(data).hexdigest(), 'again': len(inp.read())}
        elif op == '/readn':
            n = int(environ['QUERY_STRING'] or '1000')
            sizes, data = [], b''
            while True:
                chunk = inp.read(n)
                if not chunk:
                    break
                sizes.append(len(chunk))
                data += chunk
            result = {'sizes': sizes, 'sha256': hashlib.sha256(data).hexdigest(), 'zero': inp.read(0) == b''}
        elif op == '/readline':
            n = int(environ['QUERY_STRING'] or '-1')
            lines = []
            while True:
                line = inp.readline(n)
                if not line:
                    break
                lines.append(line.decode('latin-1'))
            result = {'lines': lines}
        elif op == '/readlines':
            hint = int(environ['QUERY_STRING'] or '-1')
            result = {'lines': [l.decode() for l in inp.readlines(hint)], 'rest': inp.read().decode()}
        elif op == '/iter':
            result = {'lines': [l.decode() for l in inp]}
        elif op == '/mixed':
            a = inp.readline()
            b = inp.read(3)
            c = inp.read()
            result = {'parts': [a.decode(), b.decode(), c.decode()]}
    except OSError as e:
        environ['wsgi.errors'].write('input error: %s: %s\n' % (type(e).__name__, e))
        result = {'error': str(e)}
    body = json.dumps(result).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]

"""wsgi.file_wrapper: real files (file buckets) and file-likes (iteration)."""
import io
import os

DATA = os.path.join(os.path.dirname(__file__), 'data.bin')


def application(environ, start_response):
    op = environ['PATH_INFO']
    headers = [('Content-Type', 'application/octet-stream')]
    wrapper = environ['wsgi.file_wrapper']
    if op == '/bytesio':
        start_response('200 OK', headers)
        return wrapper(io.BytesIO(b'from a BytesIO ' * 1000), 100)
    f = open(DATA, 'rb')
    if op == '/seek':
        f.seek(int(environ['QUERY_STRING']))
    elif op == '/length':
        headers.append(('Content-Length', environ['QUERY_STRING']))
    elif op == '/buffered':
        f.read(10)  # the buffered reader reads ahead; tell() still says 10
    start_response('200 OK', headers)
    return wrapper(f, 4096)

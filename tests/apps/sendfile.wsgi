"""wsgi.file_wrapper over a file the test names (and, with ?truncate, a file
cut short while Apache is still sending it)."""
import os
import threading
import time


def application(environ, start_response):
    path = os.path.join(os.path.dirname(__file__), environ['PATH_INFO'].lstrip('/'))
    f = open(path, 'rb')
    if environ['QUERY_STRING'] == 'truncate':
        def cut():
            time.sleep(0.5)  # the client is not reading yet: Apache is mid-file
            with open(path, 'r+b') as g:
                g.truncate(4096)
        threading.Thread(target=cut).start()
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return environ['wsgi.file_wrapper'](f)

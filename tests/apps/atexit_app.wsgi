import atexit
import sys
import threading
import time


def goodbye():
    print('atexit handler ran', file=sys.stderr)


atexit.register(goodbye)

# A non-daemon thread that never ends: Py_Finalize would wait for it forever.
threading.Thread(target=lambda: time.sleep(3600), daemon=False).start()


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'started']

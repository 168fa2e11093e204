"""Registers an atexit callback in whichever interpreter loads it; in the
group 'stuck' it also starts a non-daemon thread that never ends."""
import atexit
import sys
import threading
import time

import mod_wsgi

GROUP = mod_wsgi.application_group


def goodbye():
    print('atexit ran in group %r' % GROUP, file=sys.stderr)


atexit.register(goodbye)
if GROUP == 'stuck':
    threading.Thread(target=lambda: time.sleep(3600), daemon=False, name='forever').start()


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [GROUP.encode()]

"""Daemon-mode failure probes for tests/test_log_ids_daemon.py: a slow
answer, a process that dies before its headers, an oversized header."""
import os, time

def application(environ, start_response):
    op = environ.get('PATH_INFO', '/').strip('/')
    if op == 'sleep':
        time.sleep(float(environ.get('QUERY_STRING') or 3))
    elif op == 'exit':
        os._exit(1)
    elif op == 'bigheader':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Big', 'x' * 40000)])
        return [b'big']
    elif op == 'pid':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [str(os.getpid()).encode()]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']

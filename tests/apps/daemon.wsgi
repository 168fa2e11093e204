"""Daemon-mode probes, selected by PATH_INFO."""
import json
import os
import signal
import sys
import threading
import time

BIG = os.path.join(os.path.dirname(__file__), 'big.bin')


def info(environ):
    with open('/proc/self/cmdline', 'rb') as f:
        argv0 = f.read().split(b'\0')[0].decode()
    with open('/proc/self/comm') as f:
        comm = f.read().strip()
    mask = os.umask(0)
    os.umask(mask)
    return {
        'pid': os.getpid(), 'ppid': os.getppid(), 'uid': os.getuid(), 'gid': os.getgid(),
        'groups': sorted(os.getgroups()), 'cwd': os.getcwd(), 'prefix': sys.prefix,
        'path': sys.path, 'argv0': argv0, 'comm': comm, 'umask': mask,
        'lang': os.environ.get('LANG'), 'lc_all': os.environ.get('LC_ALL'),
        'group': environ['mod_wsgi.process_group'], 'multiprocess': environ['wsgi.multiprocess'],
        'multithread': environ['wsgi.multithread'], 'switch': sys.getswitchinterval(),
        'thread': threading.get_ident(),
        'imported': getattr(__import__('builtins'), 'WSGI_RS_IMPORTED', None),
    }


def application(environ, start_response):
    op = environ['PATH_INFO']
    q = environ.get('QUERY_STRING', '')
    if op == '/exit':
        os._exit(int(q or '3'))
    if op == '/kill':
        os.kill(os.getpid(), signal.SIGKILL)
    if op == '/sleep':
        time.sleep(float(q or '1'))
    if op == '/hold-gil':  # C code that keeps the GIL: deadlock-timeout's case
        import ctypes
        ctypes.PyDLL(None).sleep(int(q or '30'))
    if op == '/spin':  # Python code running, so an asynchronous exception lands
        end = time.time() + float(q or '1')
        while time.time() < end:
            time.sleep(0.01)
    if op == '/stream-then-die':
        start_response('200 OK', [('Content-Type', 'text/plain')])

        def gen():
            yield b'first block\n'
            time.sleep(0.3)
            os._exit(4)
        return gen()
    if op == '/file':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](open(BIG, 'rb'))
    if op == '/status':
        start_response('%s Whatever' % q, [('Content-Type', 'text/plain')])
        return [b'the application body']
    if op == '/fd2':  # C-level output: straight to descriptor 2
        os.write(2, b'written to descriptor 2 by %d\n' % os.getpid())
    if op == '/partial':  # reads the first q bytes of the body, then answers 8 MiB
        got = len(environ['wsgi.input'].read(int(q)))
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('X-Read', str(got))])
        return [bytes(range(256)) * 4096 for _ in range(8)]
    if op == '/echo':
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return [body]
    body = json.dumps(info(environ)).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]

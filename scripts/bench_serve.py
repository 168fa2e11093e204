#!/usr/bin/python3
"""Benchmark (not a test): `mod_wsgi_rs serve` against mod_wsgi-express
`start-server` (mod_wsgi 6), the same hello-world script, each with its
defaults (daemon mode, 1 process, 5 threads), in one run:

- start-up: from the command's start to the first 200 response;
- throughput: wrk on /, requests per second (--connections, --duration).

    /tmp/mwx/bin/pip install mod_wsgi==6.0.5     # mod_wsgi-express in a venv
    /usr/bin/python3 scripts/bench_serve.py --express /tmp/mwx/bin/mod_wsgi-express [--repeat 5]

Runs alternate and medians are compared; the machines are shared and noisy,
so quote the ratios. As root both run the app as www-data.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = b"""def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '12')])
    return [b'Hello World!']
"""


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def answered(port):
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/' % port, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def run_one(argv, port, duration, connections, work):
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while not answered(port):
            if proc.poll() is not None or time.monotonic() - t0 > 60:
                raise SystemExit('%s did not start' % argv[0])
            time.sleep(0.01)
        startup = time.monotonic() - t0
        out = subprocess.run(['wrk', '-t2', '-c%d' % connections, '-d%ds' % duration,
                              'http://127.0.0.1:%d/' % port], capture_output=True, text=True).stdout
        rps = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))
        return startup, rps
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        time.sleep(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--express', required=True, help='the mod_wsgi-express program')
    ap.add_argument('--cli', default=os.path.join(ROOT, 'target', 'release', 'mod_wsgi_rs'))
    ap.add_argument('--repeat', type=int, default=5)
    ap.add_argument('--duration', type=int, default=5)
    ap.add_argument('--connections', type=int, default=5)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix='bench-serve-')
    os.chmod(work, 0o755)
    with open(os.path.join(work, 'app.wsgi'), 'wb') as f:
        f.write(APP)
    os.chmod(os.path.join(work, 'app.wsgi'), 0o644)
    user = ['--user', 'www-data', '--group', 'www-data'] if os.geteuid() == 0 else []
    results = {'mod_wsgi_rs': [], 'mod_wsgi-express': []}
    try:
        for i in range(args.repeat):
            for name in results:
                port = free_port()
                root = os.path.join(work, '%s-%d' % (name, i))
                if name == 'mod_wsgi_rs':
                    argv = [args.cli, 'serve', 'app.wsgi']
                else:
                    argv = [args.express, 'start-server', 'app.wsgi']
                argv += ['--host', '127.0.0.1', '--port', str(port), '--server-root', root] + user
                results[name].append(run_one(argv, port, args.duration, args.connections, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {n: (statistics.median(s for s, _ in r), statistics.median(q for _, q in r))
           for n, r in results.items()}
    for name, (startup, rps) in med.items():
        print('%-17s start-up %.2f s   %8.0f requests/s   (medians of %d)' % (name, startup, rps, args.repeat))
    rs, ex = med['mod_wsgi_rs'], med['mod_wsgi-express']
    print('ratio (mod_wsgi_rs / express): start-up time %.2fx, throughput %.2fx' % (rs[0] / ex[0], rs[1] / ex[1]))


if __name__ == '__main__':
    main()

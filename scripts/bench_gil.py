#!/usr/bin/python3
"""Benchmark (not a test): two CPU-bound applications in two application
groups of one Apache child, with WSGIPerInterpreterGIL On (each
sub-interpreter has its own GIL, PEP 684) against Off (one GIL shared by
the process). Needs a module built for Python 3.12+:

    PYO3_PYTHON=/opt/wsgi-rs-pythons/3.12.1/bin/python3.12 \\
        CARGO_TARGET_DIR=target/py3.12 cargo build --release
    /usr/bin/python3 scripts/bench_gil.py --module target/py3.12/release/libmod_wsgi_rs.so \\
        [--duration 10] [--repeat 3] [--work 200000]

Each run loads both groups at once with wrk (two connections each) and
reports requests per second and how busy the Apache child was (100%: one
core); runs alternate (Off, On, Off, ...) and the
medians are compared, because shared machines are noisy: quote the ratio.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests'))
from harness import Apache  # noqa: E402

APP = '''
import sys

def application(environ, start_response):
    n, total = %d, 0
    for i in range(n):
        total += i * i
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(total).encode()]
'''


def wrk(port, path, duration):
    return subprocess.Popen(['wrk', '-t1', '-c2', '-d%ds' % duration, 'http://127.0.0.1:%d%s' % (port, path)],
                            stdout=subprocess.PIPE, text=True)


def cpu_ticks(pid):
    """User + system CPU time of a process, in clock ticks."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return int(fields[11]) + int(fields[12])


def run(module, own, work, duration, apps):
    conf = '''
WSGIPerInterpreterGIL %s
WSGIScriptAlias /one %s/cpu.wsgi application-group=one
WSGIScriptAlias /two %s/cpu.wsgi application-group=two
<Directory %s>
    Require all granted
</Directory>
''' % ('On' if own else 'Off', apps, apps, apps)
    a = Apache(conf=conf, mpm='event', name='bench-gil', module_path=module)
    a.start()
    try:
        for path in ('/one', '/two'):  # create both interpreters first
            urllib.request.urlopen('http://127.0.0.1:%d%s' % (a.port, path), timeout=30).read()
        child = a.children()[0]
        procs = [wrk(a.port, p, duration) for p in ('/one', '/two')]
        time.sleep(1)
        c0, t0 = cpu_ticks(child), time.time()
        time.sleep(duration - 2)
        busy = (cpu_ticks(child) - c0) / os.sysconf('SC_CLK_TCK') / (time.time() - t0)
        rates = []
        for p in procs:
            out = p.communicate()[0]
            m = re.search(r'Requests/sec:\s+([\d.]+)', out)
            rates.append(float(m.group(1)) if m else 0.0)
        if 'Create interpreter' not in a.error_log():
            raise RuntimeError('no sub-interpreter was created:\n' + a.error_log()[-2000:])
        return sum(rates), busy
    finally:
        a.stop()
        a.cleanup()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--module', required=True)
    p.add_argument('--duration', type=int, default=10)
    p.add_argument('--repeat', type=int, default=3)
    p.add_argument('--work', type=int, default=200000, help='loop iterations per request')
    args = p.parse_args()
    args.module = os.path.abspath(args.module)
    apps = tempfile.mkdtemp(prefix='wsgi-rs-bench-gil-')
    os.chmod(apps, 0o755)
    with open(os.path.join(apps, 'cpu.wsgi'), 'w') as f:
        f.write(APP % args.work)
    shared, own = [], []
    for i in range(args.repeat):
        shared.append(run(args.module, False, args.work, args.duration, apps))
        own.append(run(args.module, True, args.work, args.duration, apps))
        print('round %d: shared GIL %.1f req/s (child busy %.0f%%), own GIL %.1f req/s (child busy %.0f%%)'
              % (i + 1, shared[-1][0], shared[-1][1] * 100, own[-1][0], own[-1][1] * 100))
        time.sleep(1)
    s, o = statistics.median(r for r, _ in shared), statistics.median(r for r, _ in own)
    print('median: shared GIL %.1f req/s, own GIL %.1f req/s: %.2fx' % (s, o, o / s if s else 0))


if __name__ == '__main__':
    main()

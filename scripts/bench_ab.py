#!/usr/bin/python3
"""Benchmark (not a test): two builds of the module, A and B, serving the
same hello-world application embedded (event MPM, one child), to measure
what a change costs on the request path:

    git worktree add /tmp/base <commit> && (cd /tmp/base && cargo build --release)
    /usr/bin/python3 scripts/bench_ab.py /tmp/base/target/release/libmod_wsgi_rs.so \\
        target/release/libmod_wsgi_rs.so [--rounds 8] [--requests 20000]

Per round, A then B: `ab -k -c 8 -n N` and the Apache processes' CPU time
(from /proc) per request, and `wrk -t2 -c8 -d4s` requests per second. The
medians are compared as B/A ratios: the machines are shared and noisy, so
run it twice with A and B swapped and quote both ratios.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests'))
from harness import Apache  # noqa: E402

CONF = 'WSGIScriptAlias /h @APPS@/hello.wsgi application-group=%{GLOBAL}\n'
TICK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            fields = open('/proc/%d/stat' % p).read().rsplit(')', 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / TICK


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('a')
    ap.add_argument('b')
    ap.add_argument('--rounds', type=int, default=8)
    ap.add_argument('--requests', type=int, default=20000)
    args = ap.parse_args()
    servers = []
    try:
        for module in (args.a, args.b):
            s = Apache(conf=CONF, module_path=os.path.abspath(module), name='bench-ab')
            s.start()
            servers.append(s)
            for _ in range(50):
                s.get('/h')
        cpu = {0: [], 1: []}
        rps = {0: [], 1: []}
        for _ in range(args.rounds):
            for i, s in enumerate(servers):
                pids = [s.pid()] + s.children()
                before = cpu_seconds(pids)
                subprocess.run(['ab', '-q', '-k', '-n', str(args.requests), '-c', '8',
                                'http://127.0.0.1:%d/h' % s.port], capture_output=True, check=True)
                cpu[i].append((cpu_seconds(pids) - before) / args.requests * 1e6)
                out = subprocess.run(['wrk', '-t2', '-c8', '-d4s', 'http://127.0.0.1:%d/h' % s.port],
                                     capture_output=True, text=True, check=True).stdout
                rps[i].append(float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1)))
        for name, data in (('CPU µs per request', cpu), ('requests per second', rps)):
            print('%s: A %s  B %s' % (name, [round(x, 1) for x in data[0]], [round(x, 1) for x in data[1]]))
            print('  median B/A = %.3f' % (statistics.median(data[1]) / statistics.median(data[0])))
    finally:
        for s in servers:
            s.stop()
            s.cleanup()


if __name__ == '__main__':
    main()

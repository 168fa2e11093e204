#!/usr/bin/python3
"""Benchmark (not a test): the same apps under Apache + Debian's mod_wsgi,
under mod_wsgi_rs, and as static files (the ceiling), in one run, with wrk.

    /usr/bin/python3 scripts/bench.py [--mpm event|worker|prefork] [--repeat 3]
        [--duration 10] [--connections 32] [--processes N] [--threads-per-child N]
        [--tests hello,64k,post,stream] [--module target/release/libmod_wsgi_rs.so]
        [--daemon] [--uwsgi PATH]
    /usr/bin/python3 scripts/bench.py --config-only DIR   # write configs, print start commands

--daemon adds both modules in daemon mode (WSGIDaemonProcess processes=2
threads=16) and, with --uwsgi (a uwsgi binary), Apache + mod_proxy_uwsgi in
front of uWSGI with the same processes and threads: what users pick instead.

Workloads: hello (12 bytes), 64k (a 64 KiB list), post (a 1 MiB POST read
through wsgi.input in 64 KiB reads), stream (a generator of 100 x 1 KiB
blocks). The static server answers hello and 64k with files of the same
size, stream with a 100 KiB file, and post with a small file (Apache's
default handler reads and discards the body: the ceiling for reading it).

It also reports the server's CPU time per request (the Apache parent and
children, from /proc): on a 2-core machine the client can be the limit
(1 MiB POSTs), and then CPU per request is what tells the servers apart.

Runs are interleaved (mod_wsgi, mod_wsgi_rs, static, mod_wsgi, ...) and the
median of --repeat runs is reported, because shared machines are noisy:
quote the ratios, not the absolute numbers.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(ROOT, 'scripts', 'bench_apps')
MOD_WSGI = '/usr/lib/apache2/modules/mod_wsgi.so'


def apxs(var):
    return subprocess.run(['apxs', '-q', var], check=True, capture_output=True, text=True).stdout.strip()


HTTPD = os.path.join(apxs('SBINDIR'), apxs('TARGET'))
MODULES = apxs('LIBEXECDIR')
THREADED = ('StartServers {p}\nServerLimit {p}\nThreadsPerChild {n}\nThreadLimit {n}\nMaxRequestWorkers {pn}\n'
            'MinSpareThreads 1\nMaxSpareThreads {pn}\n')
MPM = {  # {p} processes of {n} threads, the same for every server
    'event': THREADED,
    'worker': THREADED,
    'prefork': 'StartServers {p}\nMinSpareServers {p}\nMaxSpareServers {p}\nServerLimit {p}\nMaxRequestWorkers {p}\n',
}
# name -> (size of the response, static file that stands in for it or None)
TESTS = {'hello': (12, 'hello'), '64k': (65536, '64k'), 'post': (7, 'posted'), 'stream': (102400, '100k')}
POST_BODY = 1 << 20
EMBEDDED = ['mod_wsgi', 'mod_wsgi_rs', 'static']
DAEMON = ['mod_wsgi-daemon', 'mod_wsgi_rs-daemon']
DAEMON_OPTIONS = 'processes=2 threads=16'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, kind, mpm, processes, threads, module, base, uwsgi=None):
        self.kind = kind
        self.uwsgi = uwsgi
        self.uwsgi_proc = None
        self.dir = os.path.join(base, kind)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        apps = os.path.join(self.dir, 'apps')
        shutil.copytree(APPS, apps)
        with open(os.path.join(apps, 'hello'), 'wb') as f:
            f.write(b'Hello World!')
        with open(os.path.join(apps, '64k'), 'wb') as f:
            f.write(b'x' * 65536)
        with open(os.path.join(apps, '100k'), 'wb') as f:
            f.write(b'x' * 102400)
        with open(os.path.join(apps, 'posted'), 'wb') as f:
            f.write(b'%d' % POST_BODY)  # what post.wsgi answers
        self.port = free_port()
        self.pidfile = os.path.join(self.dir, 'httpd.pid')
        self.conf = os.path.join(self.dir, 'httpd.conf')
        self.apps = apps
        if kind.startswith('mod_wsgi_rs'):
            load = 'LoadModule wsgi_rs_module %s\n' % module
        elif kind.startswith('mod_wsgi'):
            load = 'LoadModule wsgi_module %s\n' % MOD_WSGI
        elif kind == 'uwsgi':
            load = ''.join('LoadModule %s_module %s/mod_%s.so\n' % (m, MODULES, m) for m in ('proxy', 'proxy_uwsgi'))
        else:
            load = ''
        if kind == 'static':
            site = ''.join('Alias /%s %s/%s\n' % (t, apps, f) for t, (_, f) in TESTS.items() if f)
        elif kind == 'uwsgi':
            run = os.path.join(self.dir, 'run')  # uWSGI binds after it drops to www-data
            os.makedirs(run)
            if os.geteuid() == 0:
                import pwd
                www = pwd.getpwnam('www-data')
                os.chown(run, www.pw_uid, www.pw_gid)
            self.uwsgi_socket = os.path.join(run, 'uwsgi.sock')
            site = ''.join('ProxyPass /%s unix:%s|uwsgi://bench/%s\n' % (t, self.uwsgi_socket, t) for t in TESTS)
        else:
            site = ('WSGIApplicationGroup %%{GLOBAL}\nWSGIScriptAlias /hello %s/hello.wsgi\n'
                    'WSGIScriptAlias /64k %s/big.wsgi\nWSGIScriptAlias /post %s/post.wsgi\n'
                    'WSGIScriptAlias /stream %s/stream.wsgi\n' % (apps, apps, apps, apps))
            if kind.endswith('-daemon'):
                site = 'WSGIDaemonProcess bench %s\nWSGIProcessGroup bench\n' % DAEMON_OPTIONS + site
        user = 'User www-data\nGroup www-data\n' if os.geteuid() == 0 else ''
        with open(self.conf, 'w') as f:
            f.write(f"""ServerRoot {self.dir}
LoadModule mpm_{mpm}_module {MODULES}/mod_mpm_{mpm}.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule mime_module {MODULES}/mod_mime.so
LoadModule alias_module {MODULES}/mod_alias.so
{load}{user}ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
PidFile {self.pidfile}
DefaultRuntimeDir {self.dir}
ErrorLog {self.dir}/error.log
LogLevel warn
TypesConfig /etc/mime.types
DocumentRoot {apps}
KeepAlive On
MaxKeepAliveRequests 0
{MPM[mpm].format(p=processes, n=threads, pn=processes * threads)}
# As Debian's apache2.conf: no .htaccess look-ups on every request.
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory {apps}>
    Require all granted
</Directory>
{site}""")

    def command(self):
        return [HTTPD, '-f', self.conf]

    def start(self):
        if self.kind == 'uwsgi':
            # One app that dispatches on the path, like the Apache aliases.
            router = os.path.join(self.apps, 'router.py')
            with open(router, 'w') as f:
                f.write('import runpy\nA = {%s}\n'
                        'def application(environ, start_response):\n'
                        '    return A[environ["PATH_INFO"].strip("/")](environ, start_response)\n'
                        % ', '.join("'%s': runpy.run_path('%s/%s.wsgi')['application']" % (t, self.apps, f)
                                    for t, f in (('hello', 'hello'), ('64k', 'big'), ('post', 'post'),
                                                 ('stream', 'stream'))))
            user = ['--uid', 'www-data', '--gid', 'www-data'] if os.geteuid() == 0 else []
            self.uwsgi_proc = subprocess.Popen(
                [self.uwsgi, '--master', '--processes', '2', '--threads', '16', '--socket', self.uwsgi_socket,
                 '--chmod-socket=666', '--wsgi-file', router, '--disable-logging', '--die-on-term'] + user,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 20
            while not os.path.exists(self.uwsgi_socket) and time.time() < deadline:
                time.sleep(0.05)
        subprocess.run(self.command() + ['-k', 'start'], check=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError('%s did not start' % self.kind)

    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def processes(self):
        """Every process of this server: Apache's parent and its children
        (daemon processes included), and uWSGI's master and workers."""
        roots = [self.pid()] + ([self.uwsgi_proc.pid] if self.uwsgi_proc else [])
        pids = list(roots)
        for root in roots:
            pids += [int(p) for p in subprocess.run(
                ['ps', '-o', 'pid=', '--ppid', str(root)], capture_output=True, text=True).stdout.split()]
        return pids

    def cpu_seconds(self):
        """User + system CPU time of all its processes so far."""
        pids = self.processes()
        total = 0
        for pid in pids:
            try:
                with open('/proc/%d/stat' % pid) as f:
                    fields = f.read().rsplit(')', 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except OSError:
                pass
        return total / os.sysconf('SC_CLK_TCK')

    def rss_kib(self):
        """Total memory of all its processes: the sum of their PSS (shared
        pages counted once across them), in KiB."""
        total = 0
        for pid in self.processes():
            try:
                with open('/proc/%d/smaps_rollup' % pid) as f:
                    total += int(re.search(r'Pss:\s+(\d+)', f.read()).group(1))
            except OSError:
                pass
        return total

    def stop(self):
        if self.uwsgi_proc:
            self.uwsgi_proc.terminate()
            try:
                self.uwsgi_proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.uwsgi_proc.kill()
                self.uwsgi_proc.wait()
            self.uwsgi_proc = None
        pid = self.pid()
        if not pid:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def serves(self, test):
        return self.kind != 'static' or TESTS[test][1] is not None

    def check(self, tests):
        for path in tests:
            if not self.serves(path):
                continue
            data = b'x' * POST_BODY if path == 'post' else None
            deadline = time.time() + 15
            while True:  # a backend (uWSGI, a daemon) may still be starting: 503
                try:
                    with urllib.request.urlopen('http://127.0.0.1:%d/%s' % (self.port, path), data=data) as r:
                        body = r.read()
                        break
                except urllib.error.HTTPError as e:
                    if e.code != 503 or time.time() > deadline:
                        raise
                    time.sleep(0.5)
            size = TESTS[path][0]
            assert r.status == 200 and len(body) == size, (self.kind, path, r.status, len(body))


def wrk(port, path, duration, connections, threads, script=None, server=None):
    cmd = ['wrk', '-t%d' % threads, '-c%d' % connections, '-d%ds' % duration]
    if path == 'post':
        cmd += ['-s', script]
    cpu = server.cpu_seconds() if server else 0
    out = subprocess.run(cmd + ['http://127.0.0.1:%d/%s' % (port, path)],
                         capture_output=True, text=True, check=True).stdout
    cpu = server.cpu_seconds() - cpu if server else 0
    if 'Non-2xx' in out:
        raise RuntimeError('wrk saw error responses:\n' + out)
    errors = re.search(r'Socket errors: .*', out)
    if errors:
        print('  port %d /%s: %s' % (port, path, errors.group(0)), file=sys.stderr)
    rps = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))
    total = int(re.search(r'(\d+) requests in', out).group(1))
    return rps, 1e6 * cpu / max(total, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--mpm', default='event', choices=sorted(MPM))
    p.add_argument('--repeat', type=int, default=1)
    p.add_argument('--duration', type=int, default=10)
    p.add_argument('--connections', type=int, default=32)
    p.add_argument('--threads', type=int, default=2, help='wrk threads')
    p.add_argument('--processes', type=int, help='children (default 1 for event/worker, 8 for prefork)')
    p.add_argument('--threads-per-child', type=int, default=32, help='event/worker (default 32)')
    p.add_argument('--workers', type=int, help='old spelling: --threads-per-child, or --processes for prefork')
    p.add_argument('--tests', default=','.join(TESTS), help='comma-separated, from ' + ','.join(TESTS))
    p.add_argument('--module', default=os.path.join(ROOT, 'target', 'release', 'libmod_wsgi_rs.so'))
    p.add_argument('--config-only', metavar='DIR')
    p.add_argument('--daemon', action='store_true', help='add daemon mode (both modules) and --uwsgi')
    p.add_argument('--uwsgi', metavar='PATH', help='a uwsgi binary: adds Apache + mod_proxy_uwsgi -> uWSGI')
    args = p.parse_args()
    if args.workers and args.mpm == 'prefork':
        args.processes = args.workers
    elif args.workers:
        args.threads_per_child = args.workers
    args.processes = args.processes or (8 if args.mpm == 'prefork' else 1)
    threads = 1 if args.mpm == 'prefork' else args.threads_per_child
    tests = args.tests.split(',')
    kinds = EMBEDDED[:2] + (DAEMON if args.daemon else []) + (['uwsgi'] if args.uwsgi else []) + ['static']
    if not os.path.exists(MOD_WSGI):
        sys.exit('needs Debian\'s mod_wsgi: apt-get install libapache2-mod-wsgi-py3')
    if args.config_only:
        os.makedirs(args.config_only, exist_ok=True)
        os.chmod(args.config_only, 0o755)
        for kind in kinds:
            s = Server(kind, args.mpm, args.processes, threads, os.path.abspath(args.module), args.config_only,
                       args.uwsgi)
            print('%-19s %s   (port %d; add -X for one process)' % (kind, ' '.join(s.command()), s.port))
        return
    base = tempfile.mkdtemp(prefix='wsgi-rs-bench-')
    os.chmod(base, 0o755)
    script = os.path.join(base, 'post.lua')
    with open(script, 'w') as f:
        f.write('wrk.method = "POST"\nwrk.body = string.rep("x", %d)\n' % POST_BODY)
    servers = [Server(k, args.mpm, args.processes, threads, os.path.abspath(args.module), base, args.uwsgi)
               for k in kinds]
    results = {(k, t): [] for k in kinds for t in tests}
    cpu = {(k, t): [] for k in kinds for t in tests}
    rss = {k: [] for k in kinds}
    try:
        for rnd in range(args.repeat):
            for s in servers:
                s.start()
                try:
                    s.check(tests)
                    for path in tests:
                        if not s.serves(path):
                            continue
                        wrk(s.port, path, 2, args.connections, args.threads, script)  # warm-up
                        rps, cpu_us = wrk(s.port, path, args.duration, args.connections, args.threads, script, s)
                        results[(s.kind, path)].append(rps)
                        cpu[(s.kind, path)].append(cpu_us)
                        print('round %d %-19s %-6s %9.0f req/s %8.1f us CPU/request'
                              % (rnd + 1, s.kind, path, rps, cpu_us), file=sys.stderr)
                    rss[s.kind].append(s.rss_kib())
                finally:
                    s.stop()
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(base, ignore_errors=True)
    report(args, threads, tests, kinds, results, cpu, rss)


def report(args, threads, tests, kinds, results, cpu, rss):
    med = {k: statistics.median(v) if v else float('nan') for k, v in results.items()}
    mcpu = {k: statistics.median(v) if v else float('nan') for k, v in cpu.items()}
    print('\nmpm_%s (%d processes x %d threads), wrk -t%d -c%d -d%ds, median of %d interleaved runs%s'
          % (args.mpm, args.processes, threads, args.threads, args.connections, args.duration, args.repeat,
             '; daemons: ' + DAEMON_OPTIONS if args.daemon or args.uwsgi else ''))
    print('\nThroughput (req/s), and as a ratio to mod_wsgi embedded:')
    print('%-8s' % 'app' + ''.join('%20s' % k for k in kinds))
    for path in tests:
        base = med[('mod_wsgi', path)]
        print('%-8s' % path + ''.join('%11.0f %6.2fx ' % (med[(k, path)], med[(k, path)] / base) for k in kinds))
    print('\nServer CPU time per request (all its processes; the client, wrk, not counted):')
    print('%-8s' % 'app' + ''.join('%20s' % k for k in kinds))
    for path in tests:
        print('%-8s' % path + ''.join('%18.1fus' % mcpu[(k, path)] for k in kinds))
    r = {k: statistics.median(v) / 1024 if v else float('nan') for k, v in rss.items()}
    print('%-8s' % 'PSS' + ''.join('%16.1f MiB' % r[k] for k in kinds))
    print('\nmod_wsgi_rs / mod_wsgi, same mode (throughput; CPU per request, theirs / ours; memory):')
    pairs = [('embedded', 'mod_wsgi_rs', 'mod_wsgi')]
    if 'mod_wsgi_rs-daemon' in kinds:
        pairs.append(('daemon', 'mod_wsgi_rs-daemon', 'mod_wsgi-daemon'))
    if 'uwsgi' in kinds and 'mod_wsgi_rs-daemon' in kinds:
        pairs.append(('vs uWSGI', 'mod_wsgi_rs-daemon', 'uwsgi'))
    for label, ours, theirs in pairs:
        print('%-9s ' % label + '  '.join('%s %.2fx (CPU %.2fx)' % (
            path, med[(ours, path)] / med[(theirs, path)], mcpu[(theirs, path)] / mcpu[(ours, path)])
            for path in tests) + '   memory %.2fx' % (r[ours] / r[theirs]))


if __name__ == '__main__':
    main()

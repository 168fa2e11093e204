"""Runs the real Apache httpd with the freshly built module, in a temp dir.

Every server is started with its own generated httpd.conf, ServerRoot,
PidFile and ErrorLog, listens on a free 127.0.0.1 port, and is stopped by
the PID in its pidfile (never by name).
"""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(ROOT, 'tests', 'apps')
MODULE = os.path.abspath(os.environ.get('WSGI_RS_MODULE', os.path.join(ROOT, 'target', 'release', 'libmod_wsgi_rs.so')))


def apxs(var):
    return subprocess.run(['apxs', '-q', var], check=True, capture_output=True, text=True).stdout.strip()


# The Python the module was built against (PYO3_PYTHON), for tests that make venvs.
PYTHON = os.environ.get('WSGI_RS_TEST_PYTHON', '/usr/bin/python3')


def _python_version():
    v = os.environ.get('WSGI_RS_TEST_PY_VERSION') or subprocess.run(
        [PYTHON, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
        check=True, capture_output=True, text=True).stdout
    return tuple(int(p) for p in v.strip().split('.')[:2])


# Its (major, minor), e.g. (3, 12): WSGI_RS_TEST_PY_VERSION ("3.12") or asked of PYTHON.
# For version-specific tests: @pytest.mark.skipif(PY_VERSION < (3, 12), reason=...).
PY_VERSION = _python_version()
HTTPD = os.environ.get('WSGI_RS_HTTPD') or os.path.join(apxs('SBINDIR'), apxs('TARGET'))
MODULES_DIR = apxs('LIBEXECDIR')

MPM_SETTINGS = {
    'event': 'StartServers 1\nServerLimit 1\nThreadsPerChild 8\nThreadLimit 8\nMaxRequestWorkers 8\n'
             'MinSpareThreads 1\nMaxSpareThreads 8\n',
    'worker': 'StartServers 1\nServerLimit 1\nThreadsPerChild 8\nThreadLimit 8\nMaxRequestWorkers 8\n'
              'MinSpareThreads 1\nMaxSpareThreads 8\n',
    'prefork': 'StartServers 2\nMinSpareServers 2\nMaxSpareServers 4\nMaxRequestWorkers 4\nServerLimit 4\n',
}

BASE_MODULES = ['authz_core', 'authz_host', 'mime', 'env', 'setenvif', 'headers', 'filter', 'deflate',
                'rewrite', 'alias', 'dir']


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def headers_named(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self):
        return self.body.decode('utf-8', 'replace')

    def __repr__(self):
        return '<Response %d %r>' % (self.status, self.body[:200])


class Apache:
    def __init__(self, conf='', mpm='event', modules=(), apps=(APPS,), name='httpd',
                 module_path=MODULE, load_wsgi=True):
        self.dir = tempfile.mkdtemp(prefix='wsgi-rs-%s-' % name)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.mpm = mpm
        self.apps = os.path.join(self.dir, 'apps')
        os.makedirs(self.apps)
        for src in apps:
            for entry in os.listdir(src):
                s = os.path.join(src, entry)
                if os.path.isdir(s):
                    if entry != '__pycache__':
                        shutil.copytree(s, os.path.join(self.apps, entry),
                                        ignore=shutil.ignore_patterns('__pycache__'))
                else:
                    shutil.copy(s, self.apps)
        self.error_log_path = os.path.join(self.dir, 'error.log')
        self.pidfile = os.path.join(self.dir, 'httpd.pid')
        self.conf_path = os.path.join(self.dir, 'httpd.conf')
        loads = ''.join('LoadModule %s_module %s/mod_%s.so\n' % (m, MODULES_DIR, m)
                        for m in ['mpm_' + mpm] + BASE_MODULES + list(modules))
        if load_wsgi:
            loads += 'LoadModule wsgi_rs_module %s\n' % module_path
        user = 'User www-data\nGroup www-data\n' if os.geteuid() == 0 else ''
        if os.environ.get('WSGI_RS_TEST_COREDIR'):  # to debug a crash: its core dumps land there
            user += 'CoreDumpDirectory %s\n' % os.environ['WSGI_RS_TEST_COREDIR']
        conf = conf.replace('@APPS@', self.apps).replace('@DIR@', self.dir).replace('@PORT@', str(self.port))
        with open(self.conf_path, 'w') as f:
            f.write(f"""ServerRoot {self.dir}
{loads}
{user}
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
PidFile {self.pidfile}
ErrorLog {self.error_log_path}
LogLevel info
DefaultRuntimeDir {self.dir}
DocumentRoot {self.dir}
TypesConfig /etc/mime.types
Timeout 10
KeepAliveTimeout 2
GracefulShutdownTimeout 5
<IfModule mpm_{mpm}_module>
{MPM_SETTINGS[mpm]}
</IfModule>
<Directory {self.apps}>
    Require all granted
</Directory>
{conf}
""")

    def start(self, expect_fail=False):
        # WSGI_RS_TEST_HOOKS: the module's test-only functions (a panic at the
        # Rust boundary) exist in every interpreter.
        env = dict(os.environ, WSGI_RS_TEST_HOOKS='1')
        proc = subprocess.run([HTTPD, '-f', self.conf_path, '-k', 'start'],
                              capture_output=True, text=True, timeout=60, env=env)
        self.start_output = proc.stdout + proc.stderr
        if expect_fail:
            return proc.returncode
        if proc.returncode != 0:
            raise RuntimeError('httpd failed to start (%d):\n%s\n%s' % (proc.returncode, self.start_output, self.error_log()))
        # Listening is not enough: the parent binds its sockets before it
        # writes its pidfile, and stop() needs the PID.
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=1):
                    if self.pid():
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError('httpd did not listen on %d or write %s:\n%s' % (self.port, self.pidfile, self.error_log()))

    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def signal(self, sig):
        pid = self.pid()
        if pid:
            os.kill(pid, sig)

    def stop(self, timeout=15):
        """Stops the parent by PID and waits for it (and its pidfile) to go."""
        pid = self.pid()
        if not pid:
            return None
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return 0.0
        start = time.time()
        while time.time() - start < timeout:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return time.time() - start
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        raise RuntimeError('httpd (pid %d) did not stop within %ss' % (pid, timeout))

    def children(self):
        pid = self.pid()
        out = subprocess.run(['ps', '-o', 'pid=', '--ppid', str(pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def error_log(self):
        try:
            with open(self.error_log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def wait_for_log(self, text, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.error_log():
                return True
            time.sleep(0.05)
        return False

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.reason, resp.getheaders(), data)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def post(self, path, body, **kw):
        return self.request('POST', path, body=body, **kw)

    def raw(self, data, timeout=10, shutdown=False):
        """Sends raw bytes and returns everything the server sends back."""
        with socket.create_connection(('127.0.0.1', self.port), timeout=timeout) as s:
            s.sendall(data)
            if shutdown:
                s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                try:
                    b = s.recv(65536)
                except socket.timeout:
                    break
                if not b:
                    break
                chunks.append(b)
            return b''.join(chunks)

    def traced(self, path, syscalls, pids=None):
        """(response, strace output): GET path while strace follows pids
        (default: every child of the Apache parent) for those syscalls."""
        out = os.path.join(self.dir, 'traced.strace')
        st = subprocess.Popen(['strace', '-f', '-qq', '-e', 'trace=' + syscalls, '-o', out]
                              + sum((['-p', str(p)] for p in (pids or self.children())), []))
        try:
            time.sleep(0.7)  # strace attaches to every thread
            r = self.get(path)
            time.sleep(0.2)
        finally:
            st.send_signal(signal.SIGINT)
            st.wait(timeout=10)
        with open(out) as f:
            return r, f.read()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

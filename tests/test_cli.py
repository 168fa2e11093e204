"""The `mod_wsgi_rs` command: `serve` end to end with the system's Apache
(start, requests, SIGTERM, Ctrl-C from a terminal, nothing left running),
`--reload-on-changes`, `setup-server` + apachectl, `module-config` and
`install-module` output loaded by Apache, and the errors users see."""
import fcntl
import http.client
import os
import pty
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import termios
import time

import pytest

from harness import HTTPD, MODULE, MODULES_DIR, ROOT, free_port

CLI = os.path.join(os.path.dirname(MODULE), 'mod_wsgi_rs')
EXAMPLE = os.path.join(ROOT, 'apache', 'example', 'app.wsgi')

pytestmark = pytest.mark.skipif(not os.path.exists(CLI), reason='%s is not built' % CLI)


def public_dir(prefix):
    """A temp dir that Apache's user (www-data when the tests run as root) can read."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


@pytest.fixture
def work():
    d = public_dir('wsgi-rs-cli-')
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write(path, text, mode=0o644):
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def group_members(pgid):
    """PIDs of live (non-zombie) processes in process group `pgid`."""
    pids = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat.rsplit(')', 1)[1].split()
            if fields[0] != 'Z' and int(fields[2]) == pgid:
                pids.append(int(entry))
    return pids


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open('/proc/%d/stat' % pid) as f:
        return f.read().rsplit(')', 1)[1].split()[0] != 'Z'


def get(port, path='/', host='127.0.0.1', timeout=10, https=False):
    if https:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request('GET', path)
        r = c.getresponse()
        return r.status, r.read().decode('utf-8', 'replace')
    finally:
        c.close()


def wait_until(fn, timeout=20, what='condition'):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, http.client.HTTPException) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError('timed out waiting for %s (last: %r)' % (what, last))


class Served:
    """`mod_wsgi_rs serve ...` running in the background."""

    def __init__(self, args, cwd, server_root=None, tty=False, port=None):
        self.port = port or free_port()
        self.root = server_root or os.path.join(cwd, 'server-root')
        argv = [CLI, 'serve'] + list(args) + ['--host', '127.0.0.1', '--port', str(self.port),
                                              '--server-root', self.root]
        self.out = open(os.path.join(cwd, 'serve.out'), 'w+')
        self.err = open(os.path.join(cwd, 'serve.err'), 'w+')
        if tty:
            # A terminal as the controlling tty, as when a developer runs it.
            self.master, slave = pty.openpty()

            def session():
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            self.proc = subprocess.Popen(argv, cwd=cwd, stdin=slave, stdout=self.out, stderr=self.err,
                                         preexec_fn=session)
            os.close(slave)
        else:
            self.master = None
            self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self.out, stderr=self.err,
                                         stdin=subprocess.DEVNULL)
        self.apache_pid = None

    def started(self, path='/'):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError('serve exited %s: %s' % (self.proc.returncode, self.output()))
            return get(self.port, path)
        status = wait_until(up, what='the server to answer')
        with open(os.path.join(self.root, 'httpd.pid')) as f:
            self.apache_pid = int(f.read())
        return status

    def output(self):
        self.out.seek(0)
        self.err.seek(0)
        return 'stdout:\n%s\nstderr:\n%s' % (self.out.read(), self.err.read())

    def wait_stopped(self, timeout=30):
        code = self.proc.wait(timeout=timeout)
        assert self.apache_pid and not alive(self.apache_pid)
        assert group_members(self.apache_pid) == [], 'left running: %r' % group_members(self.apache_pid)
        return code

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.apache_pid and alive(self.apache_pid):
            os.kill(self.apache_pid, signal.SIGTERM)
        if self.master is not None:
            os.close(self.master)
            self.master = None
        self.out.close()
        self.err.close()


@pytest.fixture
def serve(work):
    servers = []

    def start(args, **kw):
        s = Served(args, kw.pop('cwd', work), **kw)
        servers.append(s)
        return s
    yield start
    for s in servers:
        s.stop()


def example(work):
    return shutil.copy(EXAMPLE, os.path.join(work, 'app.wsgi'))


def test_serve_runs_the_app_in_a_daemon_and_sigterm_stops_everything(serve, work):
    s = serve([example(work), '--processes', '2', '--threads', '3', '--access-log'])
    status, body = s.started('/hello')
    assert (status, body) == (200, 'Hello World!')
    status, page = get(s.port, '/')
    assert '<th>mod_wsgi.process_group</th><td>127.0.0.1:%d</td>' % s.port in page
    assert '<th>mod_wsgi.application_group</th><td></td>' in page
    assert '<th>wsgi.multiprocess</th><td>True</td>' in page
    out = s.output()
    assert 'Server URL         : http://127.0.0.1:%d/' % s.port in out
    assert 'Server Root        : %s' % s.root in out
    assert 'Request Capacity   : 6 (2 processes * 3 threads)' in out
    assert os.path.exists(os.path.join(s.root, 'httpd.conf'))
    with open(os.path.join(s.root, 'access_log')) as f:
        assert 'GET /hello HTTP/1.1" 200 12' in f.read()
    daemons = [p for p in group_members(s.apache_pid) if p != s.apache_pid]
    assert len(daemons) >= 3  # Apache's child and the two daemon processes
    s.proc.send_signal(signal.SIGTERM)
    assert s.wait_stopped() == 0
    assert all(not alive(p) for p in daemons)


def test_ctrl_c_in_a_terminal_stops_everything_and_a_resize_does_not(serve, work):
    s = serve([example(work), '--log-to-terminal'], tty=True)
    assert s.started('/hello') == (200, 'Hello World!')
    # A resized terminal sends SIGWINCH to the foreground group: Apache's
    # graceful-stop signal, which must not reach it.
    fcntl.ioctl(s.master, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 100, 0, 0))
    time.sleep(1.5)
    assert get(s.port, '/hello') == (200, 'Hello World!')
    assert s.proc.poll() is None
    os.write(s.master, b'\x03')  # Ctrl-C
    assert s.wait_stopped() == 0
    assert 'stopping Apache' in s.output()


def test_log_to_terminal_sends_the_logs_to_stdout_and_stderr(serve, work):
    app = write(os.path.join(work, 'app.wsgi'),
                "import sys\n"
                "def application(environ, start_response):\n"
                "    print('app says hello to the error log', file=environ['wsgi.errors'])\n"
                "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                "    return [b'ok']\n")
    s = serve([app, '--log-to-terminal', '--access-log', '--log-level', 'info'])
    assert s.started('/logged') == (200, 'ok')
    wait_until(lambda: 'GET /logged HTTP/1.1" 200' in s.output().split('stderr:')[0], what='access log on stdout')
    wait_until(lambda: 'app says hello to the error log' in s.output().split('stderr:')[1], what='error log on stderr')
    assert not os.path.exists(os.path.join(s.root, 'error_log'))
    s.proc.send_signal(signal.SIGINT)
    assert s.wait_stopped() == 0
    # Our lines and Apache's share the files: none overwrites another.
    out, err = s.output().split('\nstderr:\n')
    assert out.startswith('stdout:\nServer URL ') and 'GET /logged' in out
    lines = err.splitlines()
    assert 'mod_wsgi_rs: stopping Apache (pid %d)' % s.apache_pid in lines
    assert all(line.startswith(('[', 'mod_wsgi_rs: ')) for line in lines), lines


def test_reload_on_changes_serves_edited_code(serve, work):
    write(os.path.join(work, 'greeting.py'), "TEXT = 'first'\n")
    app = write(os.path.join(work, 'app.wsgi'),
                "import greeting\n"
                "def application(environ, start_response):\n"
                "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                "    return [greeting.TEXT.encode()]\n")
    s = serve([app, '--reload-on-changes'])
    assert s.started() == (200, 'first')
    time.sleep(1.1)  # a different mtime, whatever the file system's resolution
    write(os.path.join(work, 'greeting.py'), "TEXT = 'second'\n")
    wait_until(lambda: get(s.port) == (200, 'second'), what='the edited module to be served')
    with open(os.path.join(s.root, 'error_log')) as f:
        assert 'greeting.py changed; restarting process' in f.read()


def test_reload_on_changes_in_embedded_mode(serve, work):
    write(os.path.join(work, 'greeting.py'), "TEXT = 'first'\n")
    app = write(os.path.join(work, 'app.wsgi'),
                "import greeting\n"
                "def application(environ, start_response):\n"
                "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                "    return [(greeting.TEXT + ' ' + environ['mod_wsgi.process_group']).encode()]\n")
    s = serve([app, '--reload-on-changes', '--embedded-mode'])
    assert s.started() == (200, 'first ')
    time.sleep(1.1)
    write(os.path.join(work, 'greeting.py'), "TEXT = 'second'\n")
    wait_until(lambda: get(s.port) == (200, 'second '), what='the edited module to be served')
    s.proc.send_signal(signal.SIGTERM)
    assert s.wait_stopped() == 0


def test_module_entry_point_url_alias_and_document_root(serve, work):
    pkg = os.path.join(work, 'shop')
    os.mkdir(pkg)
    os.chmod(pkg, 0o755)
    write(os.path.join(pkg, '__init__.py'), '')
    write(os.path.join(pkg, 'web.py'),
          "def make(environ, start_response):\n"
          "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
          "    return [('shop ' + environ['SCRIPT_NAME'] + '|' + environ['PATH_INFO']).encode()]\n")
    static = public_dir('wsgi-rs-static-')
    docroot = public_dir('wsgi-rs-docroot-')
    try:
        write(os.path.join(static, 'style.css'), 'body {}\n')
        write(os.path.join(docroot, 'robots.txt'), 'User-agent: *\n')
        s = serve(['shop.web:make', '--url-alias', '/static', static, '--document-root', docroot,
                   '--mount-point', '/shop'])
        assert s.started('/shop/cart') == (200, 'shop /shop|/cart')
        assert get(s.port, '/static/style.css') == (200, 'body {}\n')
        assert get(s.port, '/robots.txt') == (200, 'User-agent: *\n')
        assert get(s.port, '/static/missing.css')[0] == 404
        # Nothing else on the file system is reachable.
        assert get(s.port, '/../../etc/passwd')[0] in (400, 403, 404)
    finally:
        shutil.rmtree(static)
        shutil.rmtree(docroot)


def test_document_root_files_win_over_an_app_mounted_at_root(serve, work):
    docroot = public_dir('wsgi-rs-docroot-')
    try:
        write(os.path.join(docroot, 'favicon.ico'), 'icon')
        s = serve([example(work), '--document-root', docroot])
        assert s.started('/hello') == (200, 'Hello World!')
        assert get(s.port, '/favicon.ico') == (200, 'icon')
    finally:
        shutil.rmtree(docroot)


def test_placeholder_page_without_an_application(serve, work):
    s = serve([])
    status, body = s.started()
    assert status == 200 and 'mod_wsgi_rs is running' in body


def test_embedded_mode_and_python_path(serve, work):
    lib = public_dir('wsgi-rs-lib-')
    try:
        write(os.path.join(lib, 'helper_lib.py'), "WORD = 'from the python path'\n")
        app = write(os.path.join(work, 'app.wsgi'),
                    "import helper_lib\n"
                    "def application(environ, start_response):\n"
                    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                    "    return [(helper_lib.WORD + '|' + environ['mod_wsgi.process_group']).encode()]\n")
        s = serve([app, '--embedded-mode', '--python-path', lib, '--threads', '4'])
        assert s.started() == (200, 'from the python path|')
        with open(os.path.join(s.root, 'httpd.conf')) as f:
            conf = f.read()
        assert 'WSGIDaemonProcess' not in conf and 'ThreadsPerChild 4' in conf
    finally:
        shutil.rmtree(lib)


def test_https_port(serve, work):
    cert, key = os.path.join(work, 'cert.pem'), os.path.join(work, 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                    '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert],
                   check=True, capture_output=True)
    https_port = free_port()
    docroot = os.path.join(work, 'htdocs')
    os.mkdir(docroot)
    os.chmod(docroot, 0o755)
    write(os.path.join(docroot, 'robots.txt'), 'static')
    s = serve([example(work), '--https-port', str(https_port), '--ssl-certificate-file', cert,
               '--ssl-certificate-key-file', key, '--document-root', docroot])
    assert s.started('/hello') == (200, 'Hello World!')
    assert get(https_port, '/hello', https=True) == (200, 'Hello World!')
    # The document root wins over the application on both ports.
    assert get(s.port, '/robots.txt') == (200, 'static')
    assert get(https_port, '/robots.txt', https=True) == (200, 'static')
    status, page = get(https_port, '/', https=True)
    assert '<th>wsgi.url_scheme</th><td>https</td>' in page
    assert 'Server URL (HTTPS) : https://127.0.0.1:%d/' % https_port in s.output()


def test_default_server_root_is_named_after_host_port_and_user(work):
    port = free_port()
    root = '/tmp/mod_wsgi_rs-127.0.0.1:%d:%d' % (port, os.geteuid())
    try:
        proc = subprocess.Popen([CLI, 'serve', example(work), '--host', '127.0.0.1', '--port', str(port)],
                                cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: get(port, '/hello') == (200, 'Hello World!'), what='the server')
            assert os.path.exists(os.path.join(root, 'httpd.conf'))
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert ('Server Root        : %s' % root) in out.decode()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_setup_server_writes_a_root_that_apachectl_runs(work):
    root = os.path.join(work, 'site')
    port = free_port()
    out = subprocess.run([CLI, 'setup-server', example(work), '--server-root', root, '--host', '127.0.0.1',
                          '--port', str(port)], capture_output=True, text=True, cwd=work)
    assert out.returncode == 0, out.stderr
    assert 'apachectl start' in out.stdout
    ctl = os.path.join(root, 'apachectl')
    assert os.access(ctl, os.X_OK)
    assert subprocess.run([ctl, 'configtest'], capture_output=True).returncode == 0
    started = subprocess.run([ctl, 'start'], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    pid = None
    try:
        wait_until(lambda: get(port, '/hello') == (200, 'Hello World!'), what='apachectl start')
        with open(os.path.join(root, 'httpd.pid')) as f:
            pid = int(f.read())
        assert subprocess.run([ctl, 'stop'], capture_output=True).returncode == 0
        wait_until(lambda: not alive(pid), what='apachectl stop')
        wait_until(lambda: group_members(pid) == [], what='its processes to go')
    finally:
        if pid and alive(pid):
            os.kill(pid, signal.SIGTERM)
    assert subprocess.run([ctl, 'bogus'], capture_output=True).returncode == 2
    # As under systemd (Type=simple): in the foreground; reload; SIGTERM stops it all.
    fg = subprocess.Popen([ctl, 'start', '-DFOREGROUND'], start_new_session=True)
    try:
        wait_until(lambda: get(port, '/hello') == (200, 'Hello World!'), what='apachectl start -DFOREGROUND')
        assert subprocess.run([ctl, 'graceful'], capture_output=True).returncode == 0
        time.sleep(1)
        wait_until(lambda: get(port, '/hello') == (200, 'Hello World!'), what='the graceful restart')
        assert fg.poll() is None
        fg.send_signal(signal.SIGTERM)
        assert fg.wait(timeout=30) == 0
        wait_until(lambda: group_members(fg.pid) == [], what='its processes to go')
    finally:
        if fg.poll() is None:
            fg.kill()
            fg.wait()


def test_setup_server_requires_a_server_root():
    out = subprocess.run([CLI, 'setup-server'], capture_output=True, text=True)
    assert out.returncode == 1
    assert 'setup-server needs --server-root DIR' in out.stderr


def apache_with(conf_lines, work, app):
    """Starts Apache from a generated httpd.conf that includes `conf_lines`."""
    port = free_port()
    user = 'User www-data\nGroup www-data\n' if os.geteuid() == 0 else ''
    conf = os.path.join(work, 'httpd.conf')
    write(conf, f"""ServerRoot {work}
LoadModule mpm_event_module {MODULES_DIR}/mod_mpm_event.so
LoadModule authz_core_module {MODULES_DIR}/mod_authz_core.so
{conf_lines}
{user}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {work}/httpd.pid
ErrorLog {work}/error.log
DefaultRuntimeDir {work}
WSGIScriptAlias /app {app}
<Directory {work}>
    Require all granted
</Directory>
""")
    assert subprocess.run([HTTPD, '-f', conf, '-t'], capture_output=True).returncode == 0
    subprocess.run([HTTPD, '-f', conf, '-k', 'start'], check=True)
    return port, conf


def stop_apache(work):
    pidfile = os.path.join(work, 'httpd.pid')
    if os.path.exists(pidfile):
        with open(pidfile) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid), what='Apache to stop')


def test_module_config_output_loads_in_a_generated_httpd_conf(work):
    out = subprocess.run([CLI, 'module-config'], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 'LoadModule wsgi_rs_module %s' % MODULE in out.stdout
    app = example(work)
    try:
        port, _ = apache_with(out.stdout, work, app)
        wait_until(lambda: get(port, '/app/hello') == (200, 'Hello World!'), what='Apache')
    finally:
        stop_apache(work)


def test_module_config_with_a_python_home(work):
    venv = os.path.join(work, 'venv')
    os.makedirs(os.path.join(venv, 'bin'))
    os.symlink('/usr/bin/python3', os.path.join(venv, 'bin', 'python3'))
    out = subprocess.run([CLI, 'module-config', '--python-home', venv], capture_output=True, text=True)
    assert out.returncode == 0 and 'WSGIPythonHome %s\n' % venv in out.stdout
    bad = subprocess.run([CLI, 'module-config', '--python-home', work], capture_output=True, text=True)
    assert bad.returncode == 1 and 'is not a Python home or virtual environment' in bad.stderr


def test_install_module_copies_it_and_prints_lines_that_load(work):
    modules = os.path.join(work, 'modules')
    os.mkdir(modules)
    os.chmod(modules, 0o755)
    out = subprocess.run([CLI, 'install-module', '--modules-directory', modules], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    installed = os.path.join(modules, 'mod_wsgi_rs.so')
    with open(installed, 'rb') as a, open(MODULE, 'rb') as b:
        assert a.read() == b.read()
    assert oct(os.stat(installed).st_mode & 0o777) == '0o644'
    assert 'LoadModule wsgi_rs_module %s' % installed in out.stdout
    app = example(work)
    try:
        port, _ = apache_with(out.stdout, work, app)
        wait_until(lambda: get(port, '/app/hello') == (200, 'Hello World!'), what='Apache')
    finally:
        stop_apache(work)
    missing = subprocess.run([CLI, 'install-module', '--modules-directory', os.path.join(work, 'nope')],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and 'does not exist' in missing.stderr


@pytest.mark.parametrize('args,message', [
    (['./missing.wsgi'], 'the WSGI script %(work)s/missing.wsgi does not exist'),
    (['not a module'], "'not a module' is not a file, nor a module name"),
    (['--https-port', '8443'], '--https-port needs both --ssl-certificate-file'),
    (['--url-alias', '/s', './nowhere'], '--url-alias /s ./nowhere: %(work)s/nowhere does not exist'),
    (['--python-home', '/nonexistent/venv'], 'the Python home /nonexistent/venv has no bin/python3'),
    (['--mount-point', 'app'], "--mount-point app must start with '/'"),
    (['--user', 'no-such-user-here'], "no-such-user-here"),
])
def test_errors_read_as_sentences(work, args, message):
    out = subprocess.run([CLI, 'serve'] + args + ['--server-root', os.path.join(work, 'r')],
                         capture_output=True, text=True, cwd=work)
    assert out.returncode == 1, out
    assert out.stderr.startswith('mod_wsgi_rs: error: ')
    assert message % {'work': work} in out.stderr
    assert not os.path.exists(os.path.join(work, 'r', 'httpd.pid'))


def test_serve_refuses_a_virtualenv_of_another_python(work):
    venv = os.path.join(work, 'venv')
    os.makedirs(os.path.join(venv, 'bin'))
    os.symlink('/usr/bin/python3', os.path.join(venv, 'bin', 'python3'))
    here = subprocess.run([CLI, 'module-config'], capture_output=True, text=True).stdout
    module_version = here.split('for Python ')[1].split('.')[:2]
    other = '3.%d' % (int(module_version[1]) + 1)
    write(os.path.join(venv, 'pyvenv.cfg'), 'home = /usr/bin\nversion = %s.0\n' % other)
    out = subprocess.run([CLI, 'serve', example(work), '--python-home', venv,
                          '--server-root', os.path.join(work, 'r')], capture_output=True, text=True)
    assert out.returncode == 1
    assert 'is a virtual environment for Python %s, but the module was built for Python %s' % (
        other, '.'.join(module_version)) in out.stderr, out.stderr
    assert not os.path.exists(os.path.join(work, 'r'))


@pytest.mark.skipif(os.geteuid() != 0, reason='Apache switches users only when started as root')
def test_serve_as_root_refuses_a_script_its_user_cannot_read(work):
    private = tempfile.mkdtemp(prefix='wsgi-rs-private-')  # 0700: www-data cannot enter it
    try:
        app = shutil.copy(EXAMPLE, os.path.join(private, 'app.wsgi'))
        out = subprocess.run([CLI, 'serve', app, '--server-root', os.path.join(work, 'r')],
                             capture_output=True, text=True)
        assert out.returncode == 1
        assert "user 'www-data' cannot enter %s" % private in out.stderr
        assert 'chmod o+rX' in out.stderr
    finally:
        shutil.rmtree(private)


def test_usage_errors_and_help():
    out = subprocess.run([CLI, 'serve', '--processes', '0'], capture_output=True, text=True)
    assert out.returncode == 2 and '--processes' in out.stderr
    out = subprocess.run([CLI], capture_output=True, text=True)
    assert out.returncode == 2 and 'serve' in out.stderr
    top = subprocess.run([CLI, '--help'], capture_output=True, text=True).stdout
    for cmd in ('serve', 'setup-server', 'module-config', 'install-module', 'check'):
        assert cmd in top
        sub = subprocess.run([CLI, cmd, '--help'], capture_output=True, text=True)
        assert sub.returncode == 0 and 'Usage: mod_wsgi_rs %s' % cmd in sub.stdout
    serve_help = subprocess.run([CLI, 'serve', '--help'], capture_output=True, text=True).stdout
    for opt in ('--host', '--port', '--processes', '--threads', '--user', '--group', '--server-root',
                '--document-root', '--url-alias', '--working-directory', '--python-path', '--python-home',
                '--virtualenv', '--application-type', '--callable-object', '--entry-point',
                '--reload-on-changes', '--log-to-terminal', '--access-log', '--log-level', '--max-clients',
                '--request-timeout', '--startup-log', '--https-port', '--ssl-certificate-file',
                '--ssl-certificate-key-file', '--embedded-mode'):
        assert opt in serve_help, opt
    version = subprocess.run([CLI, '--version'], capture_output=True, text=True).stdout
    assert version.startswith('mod_wsgi_rs 0.')


def test_startup_log_and_apache_failure_exit_status(work, serve):
    # A port that is taken: Apache cannot start; serve says so and fails.
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        s = serve([example(work), '--startup-log'], port=port)
        code = s.proc.wait(timeout=30)
        assert code != 0
        assert 'Apache exited with status' in s.output()
        with open(os.path.join(s.root, 'startup_log')) as f:
            assert 'Address already in use' in f.read()


def test_user_group_working_directory_and_locale(serve, work):
    home = public_dir('wsgi-rs-home-')
    try:
        app = write(os.path.join(work, 'app.wsgi'),
                    "import os, pwd, grp, sys\n"
                    "def application(environ, start_response):\n"
                    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                    "    return [('%s|%s|%s|%s' % (pwd.getpwuid(os.getuid()).pw_name,\n"
                    "             grp.getgrgid(os.getgid()).gr_name, os.getcwd(),\n"
                    "             sys.getfilesystemencoding())).encode()]\n")
        args = [app, '--working-directory', home]
        if os.geteuid() == 0:
            args += ['--user', 'nobody', '--group', 'nogroup']
            who = 'nobody|nogroup'
        else:
            import grp
            import pwd
            who = '%s|%s' % (pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name)
        s = serve(args)
        assert s.started() == (200, '%s|%s|utf-8' % (who, home))
    finally:
        shutil.rmtree(home)


@pytest.mark.parametrize('mpm', ['worker', 'prefork'])
def test_other_mpms(serve, work, mpm):
    s = serve([example(work), '--server-mpm', mpm, '--processes', '2'])
    assert s.started('/hello') == (200, 'Hello World!')
    with open(os.path.join(s.root, 'httpd.conf')) as f:
        assert 'LoadModule mpm_%s_module' % mpm in f.read()
    s.proc.send_signal(signal.SIGTERM)
    assert s.wait_stopped() == 0


def test_quick_start_command_serves_the_example_and_ctrl_c_stops_it(work):
    """The README's first command, run from a terminal as a user would."""
    port = free_port()
    master, slave = pty.openpty()

    def session():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    out = open(os.path.join(work, 'out'), 'w+')
    proc = subprocess.Popen([os.path.join(ROOT, 'scripts', 'serve-example.sh')], cwd='/',
                            env=dict(os.environ, PORT=str(port)), stdin=slave, stdout=out,
                            stderr=subprocess.STDOUT, preexec_fn=session)
    os.close(slave)
    try:
        wait_until(lambda: get(port, '/hello') == (200, 'Hello World!'), timeout=300, what='the example')
        status, page = get(port, '/')
        assert 'Served by mod_wsgi_rs 0.' in page
        root = '/tmp/mod_wsgi_rs-127.0.0.1:%d:%d' % (port, os.geteuid())
        with open(os.path.join(root, 'httpd.pid')) as f:
            apache = int(f.read())
        os.write(master, b'\x03')
        assert proc.wait(timeout=60) == 0
        assert not alive(apache) and group_members(apache) == []
        out.seek(0)
        text = out.read()
        assert 'Server URL         : http://127.0.0.1:%d/' % port in text
        assert 'GET /hello HTTP/1.1" 200 12' in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        out.close()
        shutil.rmtree('/tmp/mod_wsgi_rs-127.0.0.1:%d:%d' % (port, os.geteuid()), ignore_errors=True)


def test_sigint_stops_serve_even_when_started_with_sigint_ignored(work):
    """A shell starts `cmd &` with SIGINT ignored; serve takes it back."""
    port = free_port()
    root = os.path.join(work, 'root')
    proc = subprocess.Popen([CLI, 'serve', example(work), '--host', '127.0.0.1', '--port', str(port),
                             '--server-root', root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        wait_until(lambda: get(port, '/hello') == (200, 'Hello World!'), what='the server')
        with open(os.path.join(root, 'httpd.pid')) as f:
            apache = int(f.read())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert not alive(apache) and group_members(apache) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_environ_groups_headers_and_limits_options(serve, work):
    app = write(os.path.join(work, 'app.wsgi'),
                "def application(environ, start_response):\n"
                "    keys = ('STAGE', 'WSGI_RS_FROM_SHELL', 'mod_wsgi.process_group',\n"
                "            'mod_wsgi.application_group')\n"
                "    body = ('|'.join(str(environ.get(k)) for k in keys) + '\\n' + 'x' * 2000).encode()\n"
                "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                "    return [body]\n")
    docroot = public_dir('wsgi-rs-docroot-')
    include = write(os.path.join(work, 'extra.conf'),
                    '<IfModule !headers_module>\n    LoadModule headers_module %s/mod_headers.so\n</IfModule>\n'
                    'Header always set X-Included yes\n' % MODULES_DIR)
    try:
        write(os.path.join(docroot, 'index.html'), 'the index')
        os.environ['WSGI_RS_FROM_SHELL'] = 'passed on'
        try:
            s = serve([app, '--mount-point', '/app', '--setenv', 'STAGE', 'two words',
                       '--passenv', 'WSGI_RS_FROM_SHELL', '--process-group', 'shop',
                       '--application-group', 'shop-app', '--server-name', 'shop.example',
                       '--document-root', docroot, '--directory-index', 'index.html',
                       '--compress-responses', '--limit-request-body', '100', '--include-file', include])
        finally:
            del os.environ['WSGI_RS_FROM_SHELL']
        status, body = s.started('/app/')
        assert status == 200
        # PassEnv copies a variable of Apache's environment: serve passes its own on.
        assert body.splitlines()[0] == 'two words|passed on|shop|shop-app'
        assert get(s.port, '/') == (200, 'the index')
        c = http.client.HTTPConnection('127.0.0.1', s.port, timeout=10)
        c.request('GET', '/app/', headers={'Accept-Encoding': 'gzip'})
        r = c.getresponse()
        r.read()
        assert r.getheader('Content-Encoding') == 'gzip'
        assert r.getheader('X-Included') == 'yes'
        c.request('POST', '/app/', body=b'y' * 1000, headers={'Content-Type': 'text/plain'})
        r = c.getresponse()
        r.read()
        assert r.status == 413
        c.close()
        assert 'Server URL         : http://shop.example:%d/' % s.port in s.output()
    finally:
        shutil.rmtree(docroot)


def test_trusted_proxy_options(serve, work):
    app = write(os.path.join(work, 'app.wsgi'),
                "def application(environ, start_response):\n"
                "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                "    return [(environ['REMOTE_ADDR'] + '|' + environ['wsgi.url_scheme']).encode()]\n")
    s = serve([app, '--trust-proxy-header', 'X-Forwarded-For', '--trust-proxy-header', 'X-Forwarded-Proto',
               '--trust-proxy', '127.0.0.1'])
    assert s.started() == (200, '127.0.0.1|http')
    c = http.client.HTTPConnection('127.0.0.1', s.port, timeout=10)
    c.request('GET', '/', headers={'X-Forwarded-For': '203.0.113.9, 127.0.0.1', 'X-Forwarded-Proto': 'https'})
    assert c.getresponse().read() == b'203.0.113.9|https'
    c.close()
    bad = subprocess.run([CLI, 'serve', app, '--trust-proxy', '10.0.0.1'], capture_output=True, text=True)
    assert bad.returncode == 2 and '--trust-proxy-header' in bad.stderr

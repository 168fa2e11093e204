"""The Debian package (scripts/build-deb.sh): its files and control fields,
the packaged module serving; and, as root, the whole life of the package on
this machine: dpkg -i, a2enmod wsgi_rs, an application served by the SYSTEM
Apache configuration (mods-enabled), dpkg -r, dpkg -P. Debian's
libapache2-mod-wsgi-py3, which the package conflicts with, is set aside for
that when it is installed and put back as it was (package, a2enmod state)."""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from harness import MPM_SETTINGS, PY_VERSION, ROOT, Apache, apxs

PKG = 'libapache2-mod-wsgi-rs'
MOD_WSGI = 'libapache2-mod-wsgi-py3'
MODULE = '/usr/lib/apache2/modules/mod_wsgi_rs.so'
CLI = '/usr/bin/mod_wsgi_rs'
LOAD = '/etc/apache2/mods-available/wsgi_rs.load'
CONF = '/etc/apache2/mods-available/wsgi_rs.conf'
ENABLED = '/etc/apache2/mods-enabled'
A2_STATE = '/var/lib/apache2/module'  # a2enmod's markers: <enabled|disabled>_by_<admin|maint>/<module>

pytestmark = [
    pytest.mark.skipif(shutil.which('dpkg-deb') is None, reason='not a Debian system (no dpkg-deb)'),
    pytest.mark.skipif('WSGI_RS_MODULE' in os.environ,
                       reason='the package is built from target/release, not from WSGI_RS_MODULE'),
]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason='installing a package (dpkg -i) needs root')

APP = b'''import sys
def application(environ, start_response):
    body = ('%s from the package, Python %d.%d' % (environ['mod_wsgi.process_group'] or 'embedded',
                                                   *sys.version_info[:2])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
'''


def run(*cmd, check=True, timeout=300, **kw):
    """Runs cmd; dpkg and apt, while another dpkg or apt holds their lock
    (the machine may be shared), are tried again until it is free."""
    deadline = time.time() + timeout
    while True:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
        if p.returncode == 0 or not re.search(r'\block', p.stderr) or not cmd[0].startswith(('dpkg', 'apt')) \
                or time.time() > deadline:
            break
        time.sleep(1)
    if check and p.returncode != 0:
        raise AssertionError('%s failed (%d):\n%s%s' % (' '.join(cmd), p.returncode, p.stdout, p.stderr))
    return p


@pytest.fixture(scope='module')
def deb():
    """The .deb, built once by the documented command."""
    start = time.time()
    p = run(os.path.join(ROOT, 'scripts', 'build-deb.sh'), check=False, timeout=3600)
    assert p.returncode == 0, 'scripts/build-deb.sh failed:\n%s%s' % (p.stdout, p.stderr[-10000:])
    path = os.path.join(ROOT, p.stdout.strip().splitlines()[-1])
    assert path.endswith('.deb') and os.path.isfile(path), p.stdout
    print('built %s in %.0fs' % (path, time.time() - start))
    return path


def fields(deb, *names):
    out = run('dpkg-deb', '-f', deb, *names).stdout
    return dict(re.findall(r'^(\S+): (.*)$', out, re.M))


def status(pkg):
    """dpkg's status of pkg ('install ok installed'...), '' when dpkg does not know it."""
    p = run('dpkg-query', '-W', '-f=${Status}', pkg, check=False)
    return p.stdout.strip() if p.returncode == 0 else ''


def present(pkg):
    """Installed, or removed with its conffiles left (dpkg -P would purge it)."""
    s = status(pkg)
    return bool(s) and not s.endswith(' not-installed')


def a2_state(module):
    """Whether a2enmod enabled `module` (its links in mods-enabled) and its state markers."""
    return {'links': sorted(n for n in (module + '.load', module + '.conf')
                            if os.path.lexists(os.path.join(ENABLED, n))),
            'markers': sorted(glob.glob(os.path.join(A2_STATE, '*', module)))}


def test_package_files(deb, tmp_path):
    entries = {}
    for line in run('dpkg-deb', '-c', deb).stdout.splitlines():
        mode, _, _, _, _, path = line.split(None, 5)
        entries[path[1:]] = mode  # './usr/...' -> '/usr/...'
    assert entries.get(MODULE) == '-rw-r--r--', entries
    assert entries.get(CLI) == '-rwxr-xr-x', entries
    assert entries.get(LOAD) == '-rw-r--r--', entries
    assert entries.get(CONF) == '-rw-r--r--', entries
    assert '/usr/share/doc/%s/copyright' % PKG in entries
    assert run('dpkg-deb', '-I', deb, 'conffiles').stdout.split() == [LOAD, CONF]
    for script in ('postinst', 'prerm', 'postrm'):
        assert 'apache2-maintscript-helper' in run('dpkg-deb', '-I', deb, script).stdout
    run('dpkg-deb', '-x', deb, str(tmp_path))
    load = (tmp_path / LOAD[1:]).read_text()
    assert re.search(r'^LoadModule wsgi_rs_module %s$' % re.escape(MODULE), load, re.M), load
    assert '# Conflicts: wsgi' in load  # a2enmod wsgi_rs refuses while mod_wsgi is enabled
    with open(os.path.join(ROOT, 'apache', 'wsgi_rs.conf')) as f:
        assert (tmp_path / CONF[1:]).read_text() == f.read()


def test_control_fields(deb):
    f = fields(deb, 'Package', 'Architecture', 'Section', 'Priority', 'Depends', 'Conflicts', 'Replaces')
    assert f['Package'] == PKG
    assert f['Architecture'] == run('dpkg', '--print-architecture').stdout.strip()
    assert (f['Section'], f['Priority']) == ('httpd', 'optional')
    depends = [d.strip() for d in f['Depends'].split(',')]
    # The module ABI of the headers it was built with, which the system's Apache provides.
    with open(os.path.join(apxs('INCLUDEDIR'), 'ap_mmn.h')) as h:
        mmn = re.search(r'^#define MODULE_MAGIC_NUMBER_MAJOR (\d+)', h.read(), re.M).group(1)
    assert 'apache2-api-%s' % mmn in depends, depends
    provides = run('dpkg-query', '-W', '-f=${Provides}', 'apache2-bin').stdout
    assert 'apache2-api-%s' % mmn in [p.strip() for p in provides.split(',')], provides
    # dpkg-shlibdeps: the libpython the module links.
    assert any(re.fullmatch(r'libpython%d\.%d \(>= [^)]+\)' % PY_VERSION, d) for d in depends), depends
    assert MOD_WSGI in [c.strip() for c in f['Conflicts'].split(',')]
    assert 'Replaces' not in f


def test_packaged_module_serves(deb):
    """The module as packaged (stripped) loads and serves, embedded and in a daemon process."""
    a = Apache('WSGIScriptAlias /hello @APPS@/hello.wsgi\n'
               'WSGIDaemonProcess debd processes=1 threads=2\n'
               'WSGIScriptAlias /daemon @APPS@/hello.wsgi process-group=debd\n',
               name='deb', load_wsgi=False)
    try:
        run('dpkg-deb', '-x', deb, os.path.join(a.dir, 'pkg'))
        with open(a.conf_path) as f:
            conf = f.read()
        with open(a.conf_path, 'w') as f:
            f.write('LoadModule wsgi_rs_module %s/pkg%s\n%s' % (a.dir, MODULE, conf))
        a.start()
        assert a.get('/hello').body == b'Hello World!'
        assert a.get('/daemon').body == b'Hello World!'
        time.sleep(0.5)  # mpm_event: no SIGTERM right after a connection closes
    finally:
        a.stop()
        a.cleanup()


@as_root
def test_dpkg_refuses_it_next_to_mod_wsgi(deb):
    if not status(MOD_WSGI).endswith(' installed'):
        pytest.skip('%s is not installed here' % MOD_WSGI)
    if present(PKG):
        pytest.skip('%s is installed on this machine: not touching it' % PKG)
    try:
        p = run('dpkg', '-i', deb, check=False)
        assert p.returncode != 0, p.stdout
        assert '%s conflicts with %s' % (PKG, MOD_WSGI) in p.stdout + p.stderr, p.stdout + p.stderr
        assert not present(PKG) and not os.path.exists(MODULE)
        assert status(MOD_WSGI) == 'install ok installed'
    finally:
        if present(PKG):
            run('dpkg', '-P', PKG)


def system_apache_conf(a, mpms):
    """An httpd.conf for `a` (a harness.Apache, for its dir, port, pidfile and
    stop) made of the system's mods-enabled, where a2enmod put wsgi_rs."""
    mpm = ''.join('<IfModule mpm_%s_module>\n%s</IfModule>\n' % (m, s) for m, s in mpms.items())
    return f"""ServerRoot {a.dir}
Include /etc/apache2/mods-enabled/*.load
Include /etc/apache2/mods-enabled/*.conf
<IfModule !mpm_event_module>
<IfModule !mpm_worker_module>
<IfModule !mpm_prefork_module>
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
</IfModule>
</IfModule>
</IfModule>
<IfModule !authz_core_module>
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
</IfModule>
{mpm}
User www-data
Group www-data
ServerName 127.0.0.1
Listen 127.0.0.1:{a.port}
PidFile {a.pidfile}
ErrorLog {a.error_log_path}
LogLevel info
DefaultRuntimeDir {a.dir}
DocumentRoot {a.dir}
Timeout 10
WSGIDaemonProcess debd processes=1 threads=2
WSGIScriptAlias /embedded {a.apps}/app.wsgi
WSGIScriptAlias /daemon {a.apps}/app.wsgi process-group=debd
<Directory {a.apps}>
    Require all granted
</Directory>
"""


def serve_with_system_apache():
    a = Apache(apps=(), name='deb-system', load_wsgi=False)
    try:
        with open(os.path.join(a.apps, 'app.wsgi'), 'wb') as f:
            f.write(APP)
        os.chmod(os.path.join(a.apps, 'app.wsgi'), 0o644)
        with open(a.conf_path, 'w') as f:
            f.write(system_apache_conf(a, MPM_SETTINGS))
        a.start()
        r = a.get('/embedded')
        assert (r.status, r.body) == (200, b'embedded from the package, Python %d.%d' % PY_VERSION), r
        assert 'mod_wsgi_rs/' in r.header('Server'), r.headers
        r = a.get('/daemon')
        assert (r.status, r.body) == (200, b'debd from the package, Python %d.%d' % PY_VERSION), r
        time.sleep(0.5)  # mpm_event: no SIGTERM right after a connection closes
    finally:
        try:
            a.stop()
        finally:
            if os.environ.get('WSGI_RS_KEEP_TEMP') is None:
                a.cleanup()


def install_enable_serve_remove(deb):
    run('dpkg', '-i', deb)
    assert status(PKG) == 'install ok installed'
    assert os.stat(MODULE).st_mode & 0o7777 == 0o644
    assert os.access(CLI, os.X_OK)
    assert os.path.isfile(LOAD) and os.path.isfile(CONF)
    assert a2_state('wsgi_rs')['links'] == [], 'installing must not enable the module'

    run('a2enmod', 'wsgi_rs')
    for name, target in (('wsgi_rs.load', LOAD), ('wsgi_rs.conf', CONF)):
        assert os.path.realpath(os.path.join(ENABLED, name)) == target
    serve_with_system_apache()

    # Removing the package disables the module it had (its prerm), so
    # mods-enabled keeps no dangling link; the conffiles stay until purge.
    run('dpkg', '-r', PKG)
    assert status(PKG) == 'deinstall ok config-files'
    assert not os.path.exists(MODULE) and not os.path.exists(CLI)
    assert a2_state('wsgi_rs')['links'] == []
    assert os.path.isfile(LOAD) and os.path.isfile(CONF)
    # Installed again, the module its removal disabled is enabled again (postinst).
    run('dpkg', '-i', deb)
    assert a2_state('wsgi_rs')['links'] == ['wsgi_rs.conf', 'wsgi_rs.load']
    # The admin disables it, then purges: nothing of it is left, not even a2enmod's state.
    run('a2dismod', 'wsgi_rs')
    run('dpkg', '-P', PKG)
    assert not present(PKG)
    for path in (MODULE, CLI, LOAD, CONF):
        assert not os.path.lexists(path), path
    assert a2_state('wsgi_rs') == {'links': [], 'markers': []}


def save_installed_deb(pkg, version, into):
    """A copy in `into` of the .deb of pkg's installed version (from apt's
    cache, or apt-get download), or None."""
    def same(path):
        return fields(path, 'Package', 'Version') == {'Package': pkg, 'Version': version}
    for path in glob.glob('/var/cache/apt/archives/%s_*.deb' % pkg):
        if same(path):
            return shutil.copy(path, into)
    run('apt-get', 'download', '-q', '%s=%s' % (pkg, version), cwd=into, check=False)
    return next((p for p in glob.glob(os.path.join(into, '%s_*.deb' % pkg)) if same(p)), None)


def restore_a2_state(module, state):
    if state['links'] and not a2_state(module)['links']:
        run('a2enmod', '-q', module)
    elif not state['links'] and a2_state(module)['links']:
        run('a2dismod', '-q', '-f', module)
    for marker in a2_state(module)['markers']:
        if marker not in state['markers']:
            os.unlink(marker)
    for marker in state['markers']:
        if not os.path.exists(marker):
            os.makedirs(os.path.dirname(marker), exist_ok=True)
            open(marker, 'w').close()
    assert a2_state(module) == state


@as_root
def test_install_enable_serve_remove(deb):
    if present(PKG):
        pytest.skip('%s is installed on this machine: not touching it' % PKG)
    mod_wsgi = None
    if status(MOD_WSGI).endswith(' installed'):
        selection = run('dpkg', '--get-selections', MOD_WSGI).stdout.split()
        if selection != [MOD_WSGI, 'install']:
            pytest.skip('%s is installed with selection %s: not touching it' % (MOD_WSGI, selection[1:]))
        version = run('dpkg-query', '-W', '-f=${Version}', MOD_WSGI).stdout.strip()
        saved_dir = tempfile.mkdtemp(prefix='wsgi-rs-deb-')
        os.chmod(saved_dir, 0o755)  # apt-get download writes as _apt
        saved = save_installed_deb(MOD_WSGI, version, saved_dir)
        if saved is None:
            shutil.rmtree(saved_dir, ignore_errors=True)
            pytest.skip('%s %s conflicts and its .deb cannot be had (apt-get download) to put it back'
                        % (MOD_WSGI, version))
        auto = MOD_WSGI in run('apt-mark', 'showauto', MOD_WSGI).stdout.split()
        mod_wsgi = (saved_dir, saved, a2_state('wsgi'), auto)
    state_dirs = set(os.listdir(A2_STATE)) if os.path.isdir(A2_STATE) else set()
    try:
        if mod_wsgi:
            run('dpkg', '-r', MOD_WSGI)
            assert a2_state('wsgi')['links'] == []
        install_enable_serve_remove(deb)
    finally:
        try:
            if present(PKG):
                run('dpkg', '-P', PKG)
        finally:
            try:
                if mod_wsgi:
                    restore_mod_wsgi(*mod_wsgi)
            finally:
                # a2enmod/a2dismod leave the marker directories they made: empty ones go.
                for d in set(os.listdir(A2_STATE)) - state_dirs if os.path.isdir(A2_STATE) else ():
                    if not os.listdir(os.path.join(A2_STATE, d)):
                        os.rmdir(os.path.join(A2_STATE, d))


def restore_mod_wsgi(saved_dir, saved, state, auto):
    """Installs mod_wsgi's saved .deb again, with the a2enmod state and apt's
    auto/manual mark it had. The .deb stays, and is named, if that fails."""
    try:
        run('dpkg', '-i', saved)
        restore_a2_state('wsgi', state)
        if auto != (MOD_WSGI in run('apt-mark', 'showauto', MOD_WSGI).stdout.split()):
            run('apt-mark', 'auto' if auto else 'manual', MOD_WSGI)
        assert status(MOD_WSGI) == 'install ok installed'
    except BaseException as e:
        raise AssertionError('could not put %s back as it was (dpkg -i %s; a2enmod state %s): %s'
                             % (MOD_WSGI, saved, state, e)) from e
    shutil.rmtree(saved_dir, ignore_errors=True)

"""The Quick start example site and the files shipped for Debian's a2enmod."""
import os
import re
import subprocess

from harness import MODULE, ROOT, Apache

EXAMPLE = os.path.join(ROOT, 'apache', 'example')


def test_quick_start_example_site_serves(start_apache):
    with open(os.path.join(EXAMPLE, 'site.conf')) as f:
        site = f.read().replace('@EXAMPLE@', '@APPS@')
    a = start_apache(site, apps=(EXAMPLE,), name='example')
    assert a.get('/hello').body == b'Hello World!'
    health = a.get('/healthz')  # docker/'s probes
    assert (health.status, health.body, health.header('Content-Type')) == (200, b'ok', 'text/plain')
    page = a.get('/').text
    assert 'Served by mod_wsgi_rs 0.' in page and '<th>SCRIPT_NAME</th><td></td>' in page


def test_a2enmod_files_load_the_installed_module(tmp_path):
    """wsgi_rs.load + wsgi_rs.conf as scripts/install.sh writes them (the
    module directory replaced by LIBEXECDIR) parse in Apache."""
    libexec = tmp_path / 'modules'
    libexec.mkdir()
    os.symlink(MODULE, libexec / 'mod_wsgi_rs.so')
    with open(os.path.join(ROOT, 'apache', 'wsgi_rs.load')) as f:
        load = f.read().replace('/usr/lib/apache2/modules/', '%s/' % libexec)
    assert str(libexec) in load
    with open(os.path.join(ROOT, 'apache', 'wsgi_rs.conf')) as f:
        conf = f.read()
    assert 'WSGIPythonPath' in conf
    a = Apache(conf=load + conf, load_wsgi=False, name='a2enmod')
    try:
        out = subprocess.run([__import__('harness').HTTPD, '-f', a.conf_path, '-t', '-D', 'DUMP_MODULES'],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert 'wsgi_rs_module (shared)' in out.stdout
    finally:
        a.cleanup()


BANNED = re.compile(r'#\[pyclass|#\[pymodule|\bintern!|GILOnceCell|PyOnceLock|create_exception!|GILProtected')


def test_no_process_wide_python_objects_in_rust():
    """pyo3 features that keep Python objects in process-wide statics (type
    objects, interned strings, once-cells) would be shared between the
    sub-interpreters of application groups: per-interpreter objects only."""
    offenders = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, 'src')):
        for name in files:
            if name.endswith('.rs'):
                path = os.path.join(dirpath, name)
                with open(path) as f:
                    for n, line in enumerate(f, 1):
                        code = line.split('//', 1)[0]
                        if BANNED.search(code):
                            offenders.append('%s:%d: %s' % (os.path.relpath(path, ROOT), n, line.strip()))
    assert not offenders, offenders
    with open(os.path.join(ROOT, 'Cargo.toml')) as f:
        deps = [l for l in f if l.startswith('pyo3 ')]
    assert deps and not any(feat in deps[0] for feat in ('abi3', 'auto-initialize')), deps

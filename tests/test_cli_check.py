"""`mod_wsgi_rs check`: the command-line check of a WSGI application before
it is deployed, run as a real subprocess of the built binary."""
import glob
import os
import subprocess

import pytest

from harness import MODULE, PY_VERSION, PYTHON, ROOT
from test_application_groups import build_ext

CLI = os.environ.get('WSGI_RS_CLI', os.path.join(ROOT, 'target', 'release', 'mod_wsgi_rs'))
HERE = '%d.%d' % PY_VERSION

GOOD = '''
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello']
'''


def check(*args, timeout=120):
    """Runs `mod_wsgi_rs check ARGS` against the module under test."""
    p = subprocess.run([CLI, 'check', '--module-path', MODULE] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def lines(out, status):
    return [l for l in out.splitlines() if l.startswith(status + ':')]


def test_a_good_script_passes(public_tmp):
    script = public_tmp / 'app.wsgi'
    script.write_text(GOOD)
    code, out = check(script)
    assert code == 0, out
    assert not lines(out, 'error'), out
    assert 'ok: Python %s.' % HERE in out, out
    assert 'ok: load: %s loads in the main interpreter.' % script in out, out
    assert "ok: callable: 'application' is a function." in out, out
    assert out.rstrip().endswith('is ready for Apache.'), out


def test_the_quick_start_example_passes(public_tmp):
    """It imports mod_wsgi_rs, which the module provides: so does check."""
    script = public_tmp / 'app.wsgi'
    with open(os.path.join(ROOT, 'apache', 'example', 'app.wsgi')) as f:
        script.write_text(f.read())
    code, out = check(script)
    assert code == 0, out
    assert out.rstrip().endswith('is ready for Apache.'), out


def test_an_import_error_shows_its_traceback(public_tmp):
    script = public_tmp / 'broken.wsgi'
    script.write_text('import os\nprint("loading broken")\nimport no_such_package_xyz\n' + GOOD)
    code, out = check(script)
    assert code == 1, out
    [error] = lines(out, 'error')
    assert error == ("error: load: loading %s raised ModuleNotFoundError: "
                     "No module named 'no_such_package_xyz'" % script), out
    assert 'File "%s", line 3, in <module>' % script in out, out
    assert '        import no_such_package_xyz' in out, out
    # Where Python looked, how to fix it, and what the script printed.
    assert 'The Python path (sys.path) was:' in out and '--python-path' in out, out
    assert '      loading broken' in out, out
    # Not the probe's own frames.
    assert 'mod_wsgi_rs check>' not in out and '<string>' not in out, out


def test_a_syntax_error_shows_file_and_line(public_tmp):
    script = public_tmp / 'syntax.wsgi'
    script.write_text('x = 1\ndef application(environ, start_response)\n    return []\n')
    code, out = check(script)
    assert code == 1, out
    assert 'error: load: loading %s raised SyntaxError' % script in out, out
    assert 'File "%s", line 2' % script in out, out


def test_a_missing_callable_is_named_with_what_is_there(public_tmp):
    script = public_tmp / 'nocall.wsgi'
    script.write_text('import os\ndef app(environ, start_response):\n    return []\n')
    code, out = check(script)
    assert code == 1, out
    assert "error: callable: %s has no 'application'." % script in out, out
    assert 'It defines these callables: app.' in out and '--callable-object app' in out, out
    # The right name passes.
    code, out = check(script, '--callable-object', 'app')
    assert code == 0, out


def test_a_factory_instead_of_an_application_is_a_warning(public_tmp):
    script = public_tmp / 'factory.wsgi'
    script.write_text('def create_app():\n    return None\napplication = create_app\n')
    code, out = check(script)
    assert code == 0, out
    [warning] = lines(out, 'warning')
    assert "'application' is a function that cannot be called with (environ, start_response)" in warning


def test_a_module_entry_point(public_tmp):
    pkg = public_tmp / 'shop'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'wsgi.py').write_text(GOOD.replace('application', 'app'))
    code, out = check('shop.wsgi:app', '--python-path', public_tmp)
    assert code == 0, out
    assert 'ok: load: module shop.wsgi loads in the main interpreter.' in out, out
    # Without the Python path the import fails, and says where it looked.
    code, out = check('shop.wsgi:app')
    assert code == 1, out
    assert "raised ModuleNotFoundError: No module named 'shop'" in out, out


def test_a_missing_virtualenv_is_an_error_that_says_how_to_make_it(public_tmp):
    script = public_tmp / 'app.wsgi'
    script.write_text(GOOD)
    venv = public_tmp / 'venv'
    code, out = check(script, '--virtualenv', venv)
    assert code == 1, out
    assert lines(out, 'error') == ['error: Python home: %s does not exist.' % venv], out
    assert '`python%s -m venv %s`' % (HERE, venv) in out, out
    assert 'skipped: load: there is no Python to load the application with' in out, out


def other_python():
    """A Python of another minor version than the module's that
    www-data can read (scripts/test-pythons.sh makes them), or None."""
    for exe in sorted(glob.glob('/opt/wsgi-rs-pythons/3.*/bin/python3.*')):
        version = os.path.basename(exe)[len('python'):]
        if version.replace('.', '').isdigit() and version != HERE:
            return exe, version
    return None


def test_a_virtualenv_of_another_python_version_is_a_mismatch(public_tmp):
    found = other_python()
    if found is None:
        pytest.skip('no Python other than %s under /opt/wsgi-rs-pythons' % HERE)
    exe, version = found
    script = public_tmp / 'app.wsgi'
    script.write_text(GOOD)
    venv = public_tmp / 'venv'
    subprocess.run([exe, '-m', 'venv', '--without-pip', str(venv)], check=True)
    code, out = check(script, '--python-home', venv)
    assert code == 1, out
    [error] = lines(out, 'error')
    assert error == ('error: Python home: %s is a virtual environment for Python %s, but the module was '
                     'built for Python %s: Apache would refuse to start with it.' % (venv, version, HERE)), out
    assert '`python%s -m venv --clear %s`' % (HERE, venv) in out, out
    assert 'PYO3_PYTHON=%s' % os.path.join(os.path.dirname(exe), 'python' + version) in out, out
    # A venv of the module's Python passes.
    good = public_tmp / 'good-venv'
    subprocess.run([PYTHON, '-m', 'venv', '--without-pip', str(good)], check=True)
    code, out = check(script, '--python-home', good)
    assert code == 0, out


def test_an_extension_refusing_a_sub_interpreter_is_named(public_tmp):
    build_ext('onceonly', str(public_tmp))
    script = public_tmp / 'numpyish.wsgi'
    script.write_text('import onceonly\n' + GOOD)
    code, out = check(script, '--python-path', public_tmp, '--application-group', 'shop')
    assert code == 1, out
    [error] = lines(out, 'error')
    assert error.startswith("error: sub-interpreter: extension module 'onceonly' "), out
    assert 'cannot load module more than once per process' in error, out
    assert 'Use --application-group %{GLOBAL} (WSGIApplicationGroup %{GLOBAL}' in out, out
    # In the main interpreter it loads: %{GLOBAL} (the default) passes.
    code, out = check(script, '--python-path', public_tmp)
    assert code == 0, out
    assert 'sub-interpreter' not in out, out


def test_a_plain_script_loads_in_sub_interpreters(public_tmp):
    script = public_tmp / 'app.wsgi'
    script.write_text('import json, decimal\n' + GOOD)
    code, out = check(script, '--application-group', '%{RESOURCE}')
    assert code == 0, out
    assert ("ok: sub-interpreter: %s loads in a sub-interpreter (application group '%%{RESOURCE}'), "
            "and again in a second one of the same process." % script) in out, out


@pytest.mark.skipif(PY_VERSION < (3, 12), reason='a GIL per interpreter needs Python 3.12')
def test_a_single_phase_extension_refuses_an_own_gil_interpreter(public_tmp):
    build_ext('singlephase', str(public_tmp))
    script = public_tmp / 'single.wsgi'
    script.write_text('import singlephase\n' + GOOD)
    code, out = check(script, '--python-path', public_tmp, '--application-group', 'shop')
    assert code == 0, out
    code, out = check(script, '--python-path', public_tmp, '--application-group', 'shop',
                      '--per-interpreter-gil')
    assert code == 1, out
    [error] = lines(out, 'error')
    assert ("extension module 'singlephase' cannot be loaded in the sub-interpreter with its own GIL"
            in error), out
    assert 'module singlephase does not support loading in subinterpreters' in error, out


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to check for another user')
def test_a_file_apache_cannot_read_is_named(public_tmp):
    script = public_tmp / 'private.wsgi'
    script.write_text(GOOD)
    os.chmod(script, 0o600)
    code, out = check(script, '--user', 'www-data')
    assert code == 1, out
    [error] = lines(out, 'error')
    assert error == ("error: permissions: user 'www-data' cannot read the script %s "
                     "(mode 0600, owner 0:0)." % script), out
    assert '`chmod o+r %s`' % script in out, out
    assert "skipped: load: user 'www-data' cannot read the script" in out, out
    os.chmod(script, 0o644)
    code, out = check(script, '--user', 'www-data')
    assert code == 0, out
    assert "ok: permissions: user 'www-data' can read the script" in out, out


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to switch users')
def test_the_application_is_loaded_as_apaches_user(public_tmp):
    script = public_tmp / 'whoami.wsgi'
    script.write_text('import os, pwd\nprint("uid", pwd.getpwuid(os.getuid()).pw_name)\n' + GOOD)
    code, out = check(script, '--user', 'www-data')
    assert code == 0, out
    assert '      uid www-data' in out, out


def test_a_hanging_or_crashing_script_is_reported(public_tmp):
    slow = public_tmp / 'slow.wsgi'
    slow.write_text('import time\ntime.sleep(60)\n')
    code, out = check(slow, '--timeout', '1')
    assert code == 1, out
    assert 'failed: it did not finish within 1 seconds (--timeout).' in out, out
    crash = public_tmp / 'crash.wsgi'
    crash.write_text('import ctypes\nctypes.string_at(0)\n')
    code, out = check(crash)
    assert code == 1, out
    assert 'failed: Python was killed by signal 11' in out, out
    assert 'File "%s", line 2' % crash in out, out


def test_help_is_complete():
    out = subprocess.run([CLI, 'check', '--help'], capture_output=True, text=True, check=True).stdout
    for option in ['--application-type', '--callable-object', '--application-group', '--per-interpreter-gil',
                   '--python-home', '--virtualenv', '--python-path', '--working-directory', '--user',
                   '--group', '--timeout', '--module-path', '--modules-directory']:
        assert option in out, option
    assert 'Examples:' in out and 'exit status' in out


def test_usage_errors_say_what_to_do(public_tmp):
    code, out = check(public_tmp / 'app.wsgi', '--user', 'no-such-user-xyz')
    assert code == 1
    assert out.strip() == ("mod_wsgi_rs: error: there is no user 'no-such-user-xyz': give --user the "
                           "account Apache runs the application as (its User directive).")
    code, out = check(public_tmp / 'missing.wsgi')
    assert code == 1
    assert 'error: script: %s does not exist.' % (public_tmp / 'missing.wsgi') in out, out

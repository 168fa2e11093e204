"""Interpreter directives: WSGIPythonHashSeed, WSGIPythonWarnings,
WSGIDontWriteBytecode, WSGIPythonEggs, WSGISwitchInterval,
WSGICaseSensitivity, WSGIRestrictStdin/Stdout/Signal, the accepted-only
ones (WSGILazyInitialization, WSGIVerboseDebugging, WSGIPerInterpreterGIL,
WSGIDestroyInterpreter), WSGIFreeThreading and <WSGIInterpreterOptions>
sections; each in the real module in a real Apache."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import in_mode
from harness import Apache, PYTHON

APP = '''\
import json, os, signal, sys, warnings


def handler(signum, frame):
    pass


def application(environ, start_response):
    action = environ.get('PATH_INFO', '').strip('/') or 'info'
    out = {'pid': os.getpid(), 'name': __name__}
    if action == 'info':
        out.update(switch=sys.getswitchinterval(), path=sys.path,
                   warnoptions=sys.warnoptions, eggs=os.environ.get('PYTHON_EGG_CACHE'),
                   dont_write_bytecode=sys.dont_write_bytecode, hash=hash('mod_wsgi_rs'))
    elif action == 'stdin':
        try:
            sys.stdin.readline()
            out['stdin'] = 'readable'
        except OSError as e:
            out['stdin'] = 'OSError: %s' % e
    elif action == 'stdout':
        try:
            print('stdout line from the application')
            out['stdout'] = 'printed'
        except OSError as e:
            out['stdout'] = 'OSError: %s' % e
    elif action == 'signal':
        try:
            returned = signal.signal(signal.SIGUSR1, handler)
            out['signal'] = {'returned_handler': returned is handler,
                             'installed': signal.getsignal(signal.SIGUSR1) is handler}
        except ValueError as e:
            out['signal'] = 'ValueError: %s' % e
    elif action == 'warn':
        try:
            warnings.warn('a user warning', UserWarning)
            warnings.warn('a deprecation', DeprecationWarning)
            out['warn'] = 'no error'
        except UserWarning as e:
            out['warn'] = 'raised %s' % e
    elif action == 'import':
        import bc_probe
        out['imported'] = bc_probe.__file__
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(out).encode()]
'''

SERVICE = '''\
import signal, sys


def handler(signum, frame):
    pass


signal.signal(signal.SIGUSR1, handler)
sys.stderr.write('service signal handler installed: %s\\n' % (signal.getsignal(signal.SIGUSR1) is handler))
sys.stderr.flush()
import time
time.sleep(30)
'''


@pytest.fixture(scope='module')
def apps():
    """The test applications, copied into each server's apps directory."""
    d = tempfile.mkdtemp(prefix='wsgi-rs-interp-apps-')
    os.makedirs(os.path.join(d, 'CaseDir'))
    for path, text in [('interp.wsgi', APP), ('CaseDir/Mixed.wsgi', APP), ('service.py', SERVICE)]:
        with open(os.path.join(d, path), 'w') as f:
            f.write(text)
    subprocess.run(['chmod', '-R', 'a+rX', d], check=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope='module')
def libs():
    """Module directories that Apache's children (www-data) may write to
    (so that only the configuration decides whether bytecode appears)."""
    d = tempfile.mkdtemp(prefix='wsgi-rs-interp-lib-')
    for sub in ['bc_on', 'bc_default', 'base', 'pg', 'ag']:
        os.makedirs(os.path.join(d, sub))
        with open(os.path.join(d, sub, 'bc_probe.py'), 'w') as f:
            f.write('VALUE = %r\n' % sub)
    subprocess.run(['chmod', '-R', 'a+rwX', d], check=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start(start_apache, conf, apps, env_drop=('PYTHONDONTWRITEBYTECODE', 'PYTHONHASHSEED', 'PYTHON_EGG_CACHE'),
          env_set=None, **kw):
    """Starts Apache with `conf`, the applications of `apps`, and an
    environment without the variables that would do the directives' work."""
    with pytest.MonkeyPatch.context() as mp:
        for name in env_drop:
            mp.delenv(name, raising=False)
        for name, value in (env_set or {}).items():
            mp.setenv(name, value)
        return start_apache(conf, apps=(apps,), **kw)


def get(a, path):
    r = a.get(path)
    assert r.status == 200, (r, a.error_log()[-3000:])
    return json.loads(r.body)


CONFIGURED = '''
WSGIPythonHashSeed 0
WSGIPythonWarnings error::UserWarning
WSGIPythonWarnings ignore::DeprecationWarning
WSGIDontWriteBytecode On
WSGIPythonEggs /var/tmp/wsgi-rs-egg-cache
WSGISwitchInterval 0.0123
WSGICaseSensitivity Off
WSGIPythonPath {libs}/bc_on
WSGIRestrictStdin On
WSGIRestrictStdout On
WSGIRestrictSignal Off
WSGIDestroyInterpreter Off
WSGILazyInitialization Off
WSGIVerboseDebugging On
WSGIPerInterpreterGIL On
WSGIScriptAlias /app @APPS@/interp.wsgi application-group=%{{GLOBAL}}
WSGIScriptAlias /case @APPS@/CaseDir/Mixed.wsgi application-group=%{{GLOBAL}}
'''

DEFAULTS = '''
WSGIPythonPath {libs}/bc_default
WSGIScriptAlias /app @APPS@/interp.wsgi application-group=%{{GLOBAL}}
WSGIScriptAlias /case @APPS@/CaseDir/Mixed.wsgi application-group=%{{GLOBAL}}
'''


@pytest.fixture(scope='module')
def configured(start_apache, apps, libs):
    """Every global interpreter directive set (embedded, event MPM: request
    threads are not the main thread)."""
    return start(start_apache, CONFIGURED.format(libs=libs), apps, name='interpconf', mpm='event')


@pytest.fixture(scope='module', params=['embedded', 'daemon'])
def defaults(request, start_apache, apps, libs):
    """None of them set: mod_wsgi's defaults, in Apache's children or a daemon process."""
    a = start(start_apache, in_mode(DEFAULTS.format(libs=libs), request.param), apps,
              name='interpdefault', mpm='event')
    a.mode = request.param
    return a


def seed0_hash(text):
    """hash(text) in the module's Python with PYTHONHASHSEED=0."""
    env = dict(os.environ, PYTHONHASHSEED='0')
    out = subprocess.run([PYTHON, '-c', 'print(hash(%r))' % text], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_hash_seed_makes_str_hashes_those_of_that_seed(configured):
    assert get(configured, '/app/info')['hash'] == seed0_hash('mod_wsgi_rs')


def test_hash_seed_random_ignores_pythonhashseed_in_the_environment(start_apache, apps):
    conf = 'WSGIPythonHashSeed random\nWSGIScriptAlias /app @APPS@/interp.wsgi application-group=%{GLOBAL}\n'
    a = start(start_apache, conf, apps, env_set={'PYTHONHASHSEED': '0'}, name='hashrandom')
    assert get(a, '/app/info')['hash'] != seed0_hash('mod_wsgi_rs')
    a.stop()


def test_python_warnings_are_warning_filters(configured, defaults):
    e = get(configured, '/app/info')
    assert e['warnoptions'] == ['error::UserWarning', 'ignore::DeprecationWarning']
    assert get(configured, '/app/warn')['warn'] == 'raised a user warning'
    assert get(defaults, '/app/warn')['warn'] == 'no error'


def test_dont_write_bytecode(configured, defaults, libs):
    if defaults.mode != 'embedded':
        pytest.skip('one control is enough')
    assert get(configured, '/app/info')['dont_write_bytecode'] is True
    assert get(configured, '/app/import')['imported'] == os.path.join(libs, 'bc_on', 'bc_probe.py')
    assert not os.path.exists(os.path.join(libs, 'bc_on', '__pycache__'))
    # Without the directive the same import writes bytecode: the test can see it.
    assert get(defaults, '/app/info')['dont_write_bytecode'] is False
    get(defaults, '/app/import')
    assert os.listdir(os.path.join(libs, 'bc_default', '__pycache__'))


def test_python_eggs_sets_the_egg_cache(configured, defaults):
    assert get(configured, '/app/info')['eggs'] == '/var/tmp/wsgi-rs-egg-cache'
    assert get(defaults, '/app/info')['eggs'] is None


def test_switch_interval(configured, defaults):
    assert get(configured, '/app/info')['switch'] == pytest.approx(0.0123)
    assert configured.wait_for_log('Python GIL switch interval set to 0.012300s in main interpreter')
    assert get(defaults, '/app/info')['switch'] == pytest.approx(0.005)


def test_case_sensitivity_off_lower_cases_the_module_name(configured, defaults):
    for a, lower in [(configured, True), (defaults, False)]:
        path = os.path.join(a.apps, 'CaseDir', 'Mixed.wsgi')
        key = path.lower() if lower else path
        assert get(a, '/case/info')['name'] == '_mod_wsgi_' + hashlib.md5(key.encode()).hexdigest()


def test_restricted_stdin_and_stdout_raise_oserror(configured, defaults):
    assert get(configured, '/app/stdin')['stdin'] == 'OSError: sys.stdin access restricted by mod_wsgi'
    assert get(configured, '/app/stdout')['stdout'] == 'OSError: sys.stdout access restricted by mod_wsgi'
    # Off (the default): stdin reads (Apache's is /dev/null), print() goes to the error log.
    assert get(defaults, '/app/stdin')['stdin'] == 'readable'
    assert get(defaults, '/app/stdout')['stdout'] == 'printed'
    assert defaults.wait_for_log('stdout line from the application')


@pytest.mark.parametrize('mode', ['embedded', 'daemon'])
def test_restrictions_apply_in_daemon_processes_too(start_apache, apps, mode):
    conf = in_mode('WSGIRestrictStdin On\nWSGIRestrictStdout On\n'
                   'WSGIScriptAlias /app @APPS@/interp.wsgi application-group=%{GLOBAL}\n', mode)
    a = start(start_apache, conf, apps, name='restrict' + mode, mpm='prefork')
    assert get(a, '/app/stdin')['stdin'] == 'OSError: sys.stdin access restricted by mod_wsgi'
    assert get(a, '/app/stdout')['stdout'] == 'OSError: sys.stdout access restricted by mod_wsgi'
    a.stop()


def test_signal_registrations_are_ignored_and_logged_by_default(defaults):
    e = get(defaults, '/app/signal')
    assert e['signal'] == {'returned_handler': True, 'installed': False}
    assert defaults.wait_for_log('Ignoring Python signal handler registration for signal 10 in WSGI process; '
                                 'mod_wsgi manages signals.')
    # With the caller's stack.
    assert defaults.wait_for_log('interp.wsgi", line')
    assert defaults.wait_for_log('returned = signal.signal(signal.SIGUSR1, handler)')


def test_restrict_signal_off_calls_the_real_function(configured):
    # Request threads of the event MPM are not Python's main thread.
    assert get(configured, '/app/signal')['signal'] == \
        'ValueError: signal only works in main thread of the main interpreter'


def test_service_scripts_own_their_signals(start_apache, apps):
    conf = ('WSGIDaemonProcess svc threads=0\n'
            'WSGIImportScript @APPS@/service.py process-group=svc application-group=%{GLOBAL}\n')
    a = start(start_apache, conf, apps, name='svcsignal')
    assert a.wait_for_log('service signal handler installed: ', timeout=10), a.error_log()[-2000:]
    assert 'service signal handler installed: True' in a.error_log()
    assert 'Ignoring Python signal handler registration' not in a.error_log()
    a.stop()


def test_accepted_directives_say_what_they_do(configured):
    out = configured.start_output + configured.error_log()
    assert 'WSGILazyInitialization Off has no effect' in out
    assert "WSGIVerboseDebugging is deprecated and has no effect" in out
    assert "'LogLevel info wsgi_rs:debug'" in out
    version = subprocess.run([PYTHON, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
                             capture_output=True, text=True, check=True).stdout.strip()
    own_gil_warning = 'WSGI0198: WSGIPerInterpreterGIL requires Python 3.12 or later; directive has no effect on this build.' in out
    assert own_gil_warning == (tuple(map(int, version.split('.'))) < (3, 12)), out


SECTIONS = '''
WSGIDaemonProcess d1 threads=2 python-path={libs}/base
WSGIRestrictStdout On
WSGISwitchInterval 0.011
<WSGIInterpreterOptions process-group=d1>
    WSGISwitchInterval 0.022
    WSGIPythonPath {libs}/pg
    WSGIRestrictSignal On
</WSGIInterpreterOptions>
<WSGIInterpreterOptions application-group=%{{GLOBAL}}>
    WSGIPythonPath {libs}/ag
    WSGIRestrictStdin On
</WSGIInterpreterOptions>
<WSGIInterpreterOptions process-group=d1 application-group=%{{GLOBAL}}>
    WSGISwitchInterval 0.033
</WSGIInterpreterOptions>
<WSGIInterpreterOptions process-group=d1>
    WSGIRestrictSignal Off
</WSGIInterpreterOptions>
<WSGIInterpreterOptions>
    WSGIRestrictStdout Off
</WSGIInterpreterOptions>
<WSGIInterpreterOptions process-group=d1>
    WSGIRestrictStdout On
</WSGIInterpreterOptions>
<WSGIInterpreterOptions process-group=other>
    WSGISwitchInterval 0.5
    WSGIRestrictStdin Off
    WSGIFreeThreading Off
</WSGIInterpreterOptions>
WSGIScriptAlias /emb @APPS@/interp.wsgi application-group=%{{GLOBAL}}
WSGIScriptAlias /d1 @APPS@/interp.wsgi process-group=d1 application-group=%{{GLOBAL}}
'''


def test_sections_scope_options_per_process_and_interpreter(start_apache, apps, libs):
    a = start(start_apache, SECTIONS.format(libs=libs), apps, name='sections', mpm='event')
    lib = lambda sub: os.path.join(libs, sub)
    # Apache's children, main interpreter: the top level, the application-group=%{GLOBAL}
    # section and the selector-less one (which beats the top level).
    emb = get(a, '/emb/info')
    assert emb['switch'] == pytest.approx(0.011)
    assert emb['path'][0] == lib('ag') and lib('pg') not in emb['path']
    assert get(a, '/emb/stdin')['stdin'].startswith('OSError')
    assert get(a, '/emb/stdout')['stdout'] == 'printed'
    assert get(a, '/emb/signal')['signal'] == {'returned_handler': True, 'installed': False}
    # Daemon process d1, main interpreter: both selectors beat one; of two
    # sections with one, the later wins; path layers add up on python-path=.
    d1 = get(a, '/d1/info')
    assert d1['pid'] != emb['pid']
    assert d1['switch'] == pytest.approx(0.033)
    assert d1['path'][:3] == [lib('ag'), lib('pg'), lib('base')]
    assert get(a, '/d1/stdin')['stdin'].startswith('OSError')
    assert get(a, '/d1/stdout')['stdout'] == 'OSError: sys.stdout access restricted by mod_wsgi'
    assert get(a, '/d1/signal')['signal'].startswith('ValueError')
    a.stop()


def config_line(a, text):
    """The 1-based line of `text` in the server's httpd.conf."""
    with open(a.conf_path) as f:
        return next(i for i, line in enumerate(f, 1) if line.strip() == text)


SECTION = '<WSGIInterpreterOptions>\n%s\n</WSGIInterpreterOptions>'

BAD = [
    ('WSGIPythonHashSeed 4294967296', 'WSGIPythonHashSeed 4294967296',
     'WSGIPythonHashSeed must be "random" or an integer in range [0; 4294967295]'),
    ('WSGIPythonHashSeed -1', 'WSGIPythonHashSeed -1', 'WSGIPythonHashSeed must be "random"'),
    ('WSGISwitchInterval 0', 'WSGISwitchInterval 0', 'WSGISwitchInterval must be a positive number of seconds'),
    ('WSGIDontWriteBytecode maybe', 'WSGIDontWriteBytecode maybe', 'WSGIDontWriteBytecode must be On or Off'),
    ('WSGICaseSensitivity', 'WSGICaseSensitivity', 'WSGICaseSensitivity takes one argument'),
    ('WSGIRestrictSignal yes', 'WSGIRestrictSignal yes', 'WSGIRestrictSignal must be On or Off'),
    ('WSGIDestroyInterpreter 1', 'WSGIDestroyInterpreter 1', 'WSGIDestroyInterpreter must be On or Off'),
    ('WSGILazyInitialization x', 'WSGILazyInitialization x', 'WSGILazyInitialization must be On or Off'),
    ('<VirtualHost *:80>\nWSGIPythonEggs /tmp\n</VirtualHost>', 'WSGIPythonEggs /tmp',
     'WSGIPythonEggs cannot occur within <VirtualHost> section'),
    ('<WSGIInterpreterOptions bogus=1>\n</WSGIInterpreterOptions>', '<WSGIInterpreterOptions bogus=1>',
     "<WSGIInterpreterOptions>: unknown selector 'bogus', expected process-group or application-group"),
    ('<WSGIInterpreterOptions process-group>\n</WSGIInterpreterOptions>', '<WSGIInterpreterOptions process-group>',
     "argument 'process-group' is not of the form key=value"),
    ('<WSGIInterpreterOptions process-group=a process-group=b>\n</WSGIInterpreterOptions>',
     '<WSGIInterpreterOptions process-group=a process-group=b>', 'process-group given more than once'),
    (SECTION % 'WSGIScriptAlias /x @APPS@/interp.wsgi', 'WSGIScriptAlias /x @APPS@/interp.wsgi',
     'WSGIScriptAlias cannot occur within <WSGIInterpreterOptions> section'),
    (SECTION % 'WSGIPythonHashSeed 0', 'WSGIPythonHashSeed 0',
     'WSGIPythonHashSeed cannot occur within <WSGIInterpreterOptions> section'),
    (SECTION % 'ServerAdmin x@example.com', 'ServerAdmin x@example.com',
     'ServerAdmin cannot occur within <WSGIInterpreterOptions> section'),
    (SECTION % 'WSGISwitchInterval soon', 'WSGISwitchInterval soon',
     "WSGISwitchInterval must be a positive number of seconds, not 'soon'"),
    ('<VirtualHost *:80>\n%s\n</VirtualHost>' % (SECTION % ''), '<WSGIInterpreterOptions>',
     '<WSGIInterpreterOptions> cannot occur within <VirtualHost> section'),
]


@pytest.mark.parametrize('conf,line,message', BAD)
def test_bad_values_stop_apache_with_file_line_and_reason(conf, line, message):
    a = Apache(conf=conf + '\n', name='badinterp')
    try:
        assert a.start(expect_fail=True) != 0
        where = 'Syntax error on line %d of %s:' % (config_line(a, line.replace('@APPS@', a.apps)), a.conf_path)
        assert where in a.start_output, a.start_output
        assert message in a.start_output, a.start_output
        assert a.pid() is None
    finally:
        a.cleanup()


def test_free_threading_needs_a_free_threaded_build():
    a = Apache(conf='WSGIFreeThreading Off\n' + SECTION % 'WSGIFreeThreading On' + '\n', name='freethreading')
    try:
        rc = a.start(expect_fail=True)
        free_threaded = subprocess.run(
            [PYTHON, '-c', 'import sysconfig; print(sysconfig.get_config_var("Py_GIL_DISABLED") or 0)'],
            capture_output=True, text=True, check=True).stdout.strip() == '1'
        if free_threaded:
            assert rc == 0, a.start_output
        else:
            assert rc != 0
            assert 'Syntax error on line %d' % config_line(a, 'WSGIFreeThreading On') in a.start_output
            assert 'WSGIFreeThreading On needs a free-threaded Python build' in a.start_output
            assert 'which is not a free-threaded build' in a.start_output, a.start_output
    finally:
        a.stop()
        a.cleanup()

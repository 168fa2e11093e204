"""Directives: errors at start-up, Python settings, callables, reloading."""
import json
import os
import shutil
import subprocess
import time

import pytest

from harness import Apache, MODULE, PYTHON, PY_VERSION

BAD = [
    ('WSGIPythonOptimize 3', 'WSGIPythonOptimize must be 0, 1 or 2'),
    ('WSGIScriptAlias /x @APPS@/env.wsgi bogus=1', 'Invalid option to WSGI script alias definition'),
    ('WSGIScriptAlias /x @APPS@/env.wsgi process-group=daemon1', "WSGI process group not yet configured: 'daemon1'"),
    ('WSGIScriptAlias /x', 'WSGIScriptAlias needs a URL and a script path'),
    ('WSGIScriptAlias relative @APPS@/env.wsgi', "must start with '/'"),
    ('WSGIScriptAliasMatch ^/(unclosed @APPS@/env.wsgi', 'Regular expression could not be compiled'),
    ('WSGIApplicationGroup %{BOGUS}', "Invalid application group '%{BOGUS}'"),
    ('WSGICallableObject not.valid', "Invalid callable object name 'not.valid'"),
    ('WSGIPassAuthorization maybe', 'WSGIPassAuthorization must be On or Off'),
    ('WSGIChunkedRequest', 'WSGIChunkedRequest takes one argument'),
    ('WSGIMapHEADToGET Sometimes', "WSGIMapHEADToGET must be one of: Off | On | Auto, not 'Sometimes'"),
    ('<Location /x>\nWSGIMapHEADToGET On Off\n</Location>', 'WSGIMapHEADToGET takes one argument, got 2'),
    ('WSGIEnableSendfile maybe', 'WSGIEnableSendfile must be On or Off'),
    ('<Location /x>\nWSGIEnableSendfile\n</Location>', 'WSGIEnableSendfile takes one argument, got 0'),
    ('WSGIPythonHome /no/such/python/home', "Unable to stat Python home '/no/such/python/home'"),
    ('<VirtualHost *:80>\nWSGIPythonPath /tmp\n</VirtualHost>', 'cannot occur within <VirtualHost> section'),
    ('WSGIDaemonProcess site processes=0', 'Invalid value for processes'),
    ('WSGIDaemonProcess site bogus=1', "Invalid option to WSGI daemon process definition: 'bogus'"),
    ('WSGIDaemonProcess site chroot=/srv', 'chroot= is deprecated'),
    ('WSGIDaemonProcess site user=no-such-user-here', "Unknown user 'no-such-user-here'"),
    ('WSGIDaemonProcess site user=#0', 'WSGI process blocked from running as root.'),
    ('WSGIDaemonProcess site\nWSGIDaemonProcess site', "Name duplicates previous WSGI daemon definition: 'site'"),
    ('WSGIDaemonProcess site server-metrics=maybe', "server-metrics must be On or Off, not 'maybe'"),
    ('WSGIDaemonProcess site script-user=nobody script-group=nogroup', 'Only one of script-user and script-group allowed.'),
    ('<Location /x>\nWSGIProcessGroup %{BOGUS}\n</Location>', "Invalid process group '%{BOGUS}'"),
    ('WSGIImportScript /x.py process-group=nope application-group=%{GLOBAL}',
     "WSGI process group not yet configured: 'nope'"),
    ('WSGIImportScript /x.py', 'WSGIImportScript needs both process-group= and application-group='),
    ('<Location /x>\nWSGIRestrictProcess\n</Location>', 'WSGIRestrictProcess needs one or more process group names'),
    ('<VirtualHost *:80>\nWSGISocketPrefix /tmp/x\n</VirtualHost>', 'cannot occur within <VirtualHost> section'),
    ('WSGIAuthUserScript /x.wsgi', 'WSGIAuthUserScript not allowed here'),
    ('<Location /x>\nWSGIAuthUserScript\n</Location>', 'Location of auth user script not supplied.'),
    ('<Location /x>\nWSGIAccessScript /x.wsgi bogus=1\n</Location>',
     "Invalid option to WSGI access script definition: 'bogus=1'"),
    ('<Location /x>\nWSGIAuthGroupScript /x.wsgi process-group=d\n</Location>',
     'Invalid option to WSGI auth group script definition'),
    ('<Location /x>\nWSGIAuthUserScript /x.wsgi application-group=\n</Location>',
     'Invalid name for WSGI application group.'),
    ('<Location /x>\nWSGIAccessScript /x.wsgi application-group=%{BOGUS}\n</Location>',
     "Invalid application group '%{BOGUS}'"),
    ('<Location /x>\nWSGIGroupAuthoritative maybe\n</Location>', 'WSGIGroupAuthoritative must be one of: Off | On'),
    ('WSGITrustedProxyHeaders X-Forwarded-For X-Bogus', "'X-Bogus' is not a proxy header"),
    ('<Location /x>\nWSGITrustedProxyHeaders\n</Location>', 'needs one or more header names'),
    ('WSGITrustedProxies 10.0.0.0/33', 'Unable to parse trusted proxy IP address/subnet of "10.0.0.0/33"'),
    ('<Location /x>\nWSGITrustedProxies 127.0.0.1 not-an-ip\n</Location>',
     'Unable to parse trusted proxy IP address/subnet of "not-an-ip"'),
    ('WSGITrustedProxies 10.0.0.0/255.0.255.0', 'not a contiguous netmask'),
    ('WSGISlowRequests soon', "WSGISlowRequests needs a threshold in seconds (0 or more), not 'soon'"),
    ('<VirtualHost *:80>\nWSGISlowRequests 1\n</VirtualHost>', 'cannot occur within <VirtualHost> section'),
    ('WSGITelemetryService udp:127.0.0.1:9000', "target must be 'unix:/path'"),
    ('WSGITelemetryService unix:/tmp/t.sock interval=0.1', 'interval must be at least 0.5 seconds'),
    ('WSGITelemetryService unix:/tmp/t.sock every=2', "second argument must be 'interval=N'"),
    ('<VirtualHost *:80>\nWSGITelemetryService unix:/tmp/t.sock\n</VirtualHost>',
     'cannot occur within <VirtualHost> section'),
    ('WSGITelemetryOptions CaptureEverything', "unknown flag 'CaptureEverything'"),
    ('WSGITelemetryOptions +CaptureUserAgent None', 'cannot mix +/- flags with absolute names'),
]


@pytest.mark.parametrize('line,message', BAD)
def test_bad_directive_stops_apache_with_file_line_and_reason(line, message):
    a = Apache(conf=line + '\n', name='badconf')
    try:
        rc = a.start(expect_fail=True)
        assert rc != 0
        assert 'Syntax error on line' in a.start_output and a.conf_path in a.start_output, a.start_output
        assert message in a.start_output, a.start_output
        directive = next(w for w in line.split() if w.startswith('WSGI'))
        assert directive in a.start_output.split('httpd.conf:', 1)[1], a.start_output  # the reason names it
        assert a.pid() is None
    finally:
        a.stop()
        a.cleanup()


def test_module_exports_its_module_symbol():
    out = subprocess.run(['nm', '-D', '--defined-only', MODULE], capture_output=True, text=True, check=True).stdout
    assert any(l.split()[-1] == 'wsgi_rs_module' and l.split()[1] in 'DB' for l in out.splitlines())


def test_python_path_and_optimize(start_apache, public_tmp):
    lib = public_tmp
    (lib / 'marker_mod.py').write_text('VALUE = "from WSGIPythonPath"\n')
    (lib / 'extra.pth').write_text(str(lib / 'via_pth') + '\n')
    (lib / 'via_pth').mkdir()
    os.chmod(lib / 'via_pth', 0o755)
    (lib / 'via_pth' / 'pth_mod.py').write_text('VALUE = "from a .pth file"\n')
    for p in lib.rglob('*'):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    app = lib / 'app.wsgi'
    app.write_text('import sys, json, marker_mod, pth_mod\n'
                   'def application(environ, start_response):\n'
                   '    start_response("200 OK", [("Content-Type", "application/json")])\n'
                   '    return [json.dumps({"marker": marker_mod.VALUE, "pth": pth_mod.VALUE,\n'
                   '        "path0": sys.path[0], "optimize": sys.flags.optimize,\n'
                   '        "executable": sys.executable}).encode()]\n')
    os.chmod(app, 0o644)
    a = start_apache('WSGIPythonPath %s\nWSGIPythonOptimize 1\nWSGIScriptAlias /p %s\n'
                     '<Directory %s>\nRequire all granted\n</Directory>\n' % (lib, app, lib), name='pypath')
    r = a.get('/p')
    assert r.status == 200, a.error_log()
    e = json.loads(r.body)
    assert e['marker'] == 'from WSGIPythonPath' and e['pth'] == 'from a .pth file'
    assert e['path0'] == str(lib)
    assert e['optimize'] == 1
    assert os.path.basename(e['executable']).startswith('python')
    a.stop()


def test_embedded_python_is_the_one_built_against(start_apache):
    """The interpreter in Apache's children is WSGI_RS_TEST_PYTHON's: its
    version, and its prefix and stdlib, found (and readable) as Apache's user."""
    probe = ('import json, os, sys\n'
             'print(json.dumps({"version": list(sys.version_info[:2]), "prefix": sys.base_prefix,\n'
             '    "stdlib": os.path.dirname(os.__file__), "executable": os.path.realpath(sys.executable)}))\n')
    want = json.loads(subprocess.run([PYTHON, '-c', probe], capture_output=True, text=True, check=True).stdout)
    a = start_apache('WSGIScriptAlias /py @APPS@/py.wsgi\n', name='embeddedpy')
    with open(os.path.join(a.apps, 'py.wsgi'), 'w') as f:
        f.write('import io, contextlib\n'
                'def application(environ, start_response):\n'
                '    out = io.StringIO()\n'
                '    with contextlib.redirect_stdout(out):\n'
                '        exec(%r, {})\n'
                '    start_response("200 OK", [("Content-Type", "application/json")])\n'
                '    return [out.getvalue().encode()]\n' % probe)
    r = a.get('/py')
    assert r.status == 200, a.error_log()
    assert json.loads(r.body) == want
    assert tuple(want['version']) == PY_VERSION
    a.stop()


def test_python_home_virtualenv(start_apache, public_tmp):
    venv = public_tmp / 'env'
    subprocess.run([PYTHON, '-m', 'venv', '--without-pip', str(venv)], check=True)
    site = subprocess.run([str(venv / 'bin' / 'python'), '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, 'venv_only_mod.py'), 'w') as f:
        f.write('VALUE = "inside the venv"\n')
    subprocess.run(['chmod', '-R', 'a+rX', str(venv)], check=True)
    a = start_apache('WSGIPythonHome %s\nWSGIScriptAlias /v @APPS@/venv.wsgi\n' % venv, name='venv')
    with open(os.path.join(a.apps, 'venv.wsgi'), 'w') as f:
        f.write('import sys, venv_only_mod\n'
                'def application(environ, start_response):\n'
                '    start_response("200 OK", [("Content-Type", "text/plain")])\n'
                '    return [("%s|%s" % (sys.prefix, venv_only_mod.VALUE)).encode()]\n')
    r = a.get('/v')
    assert (r.status, r.text) == (200, '%s|inside the venv' % venv), a.error_log()
    a.stop()


def test_python_home_for_another_python_version_is_refused(tmp_path):
    (tmp_path / 'pyvenv.cfg').write_text('home = /opt/python/bin\nversion = 3.2.1\n')
    a = Apache(conf='WSGIPythonHome %s\n' % tmp_path, name='badvenv')
    try:
        assert a.start(expect_fail=True) != 0
        assert 'is a virtual environment for Python 3.2' in a.start_output
    finally:
        a.cleanup()


def test_daemon_python_home_for_another_python_version_is_refused(tmp_path):
    (tmp_path / 'pyvenv.cfg').write_text('home = /opt/python/bin\nversion = 3.2.1\n')
    a = Apache(conf='WSGIDaemonProcess d python-home=%s\n' % tmp_path, name='badvenv-daemon')
    try:
        assert a.start(expect_fail=True) != 0
        assert "python-home= '%s' is a virtual environment for Python 3.2" % tmp_path in a.start_output
        assert 'httpd.conf' in a.start_output  # with the file and line
    finally:
        a.cleanup()


def test_callable_object(start_apache):
    a = start_apache('WSGIScriptAlias /default @APPS@/callables.wsgi\n'
                     'WSGIScriptAlias /opt @APPS@/callables.wsgi callable-object=other\n'
                     'WSGIScriptAlias /dir @APPS@/callables.wsgi\n'
                     '<Location /dir>\nWSGICallableObject other\n</Location>\n'
                     'WSGIScriptAlias /env @APPS@/callables.wsgi\n'
                     '<Location /env>\nSetEnv APP_CALLABLE other\nWSGICallableObject %{ENV:APP_CALLABLE}\n</Location>\n',
                     name='callables')
    assert a.get('/default').body == b'default callable'
    assert a.get('/opt').body == b'other callable'
    assert a.get('/dir').body == b'other callable'
    assert a.get('/env').body == b'other callable'  # %{ENV:APP_CALLABLE}
    a.stop()


def write_app(path, text, mtime):
    with open(path, 'w') as f:
        f.write('def application(environ, start_response):\n'
                '    start_response("200 OK", [("Content-Type", "text/plain")])\n'
                '    return [b"%s"]\n' % text)
    os.utime(path, (mtime, mtime))


@pytest.mark.parametrize('reloading', ['On', 'Off'])
def test_script_reloading(start_apache, reloading):
    a = start_apache('WSGIScriptAlias /app @APPS@/reload.wsgi\nWSGIScriptReloading %s\n' % reloading,
                     name='reload', mpm='event')
    path = os.path.join(a.apps, 'reload.wsgi')
    now = time.time()
    write_app(path, 'version one', now - 100)
    assert a.get('/app').body == b'version one'
    write_app(path, 'version two', now - 50)
    expected = b'version two' if reloading == 'On' else b'version one'
    assert a.get('/app').body == expected
    log = a.error_log()
    assert 'Initializing Python runtime in embedded mode.' in log
    # Logged at info, in mod_wsgi 6's words.
    assert log.count("Loading WSGI script '%s' into sub-interpreter " % path) == 1
    assert log.count("Reloading WSGI script '%s' into sub-interpreter " % path) == (1 if reloading == 'On' else 0)
    a.stop()


def test_script_is_preloaded_when_both_groups_are_named(start_apache):
    srv = start_apache('WSGIScriptAlias /pre @APPS@/preload.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}\n',
                       name='preload', mpm='event')
    assert srv.wait_for_log('preload.wsgi imported')  # before any request
    assert srv.get('/pre').body == b'preloaded'
    assert srv.error_log().count('preload.wsgi imported') == 1
    srv.stop()


def test_script_module_name_is_mod_wsgis(start_apache):
    """`_mod_wsgi_<md5(path)>` like mod_wsgi (pickles and loggers see it), computed
    without importing hashlib, which would map OpenSSL into every child."""
    import hashlib
    a = start_apache('WSGIScriptAlias /m @APPS@/modname.wsgi\n', name='modname', mpm='prefork')
    got = json.loads(a.get('/m').body)
    path = os.path.join(a.apps, 'modname.wsgi')
    assert got['file'] == path
    assert got['name'] == '_mod_wsgi_' + hashlib.md5(path.encode()).hexdigest()
    assert not got['hashlib_loaded']
    a.stop()


def test_alias_beside_a_root_mount(start_apache):
    """The usual Django layout: Apache serves /static/ (mod_alias runs first),
    the application everything else, SCRIPT_NAME '' at the root."""
    a = start_apache('Alias /static/ @APPS@/static/\nWSGIScriptAlias / @APPS@/env.wsgi\n', name='rootmount')
    os.makedirs(os.path.join(a.apps, 'static'))
    with open(os.path.join(a.apps, 'static', 'site.css'), 'w') as f:
        f.write('body { color: black }\n')
    r = a.get('/static/site.css')
    assert (r.status, r.body) == (200, b'body { color: black }\n')
    e = json.loads(a.get('/staticky/page?x=1').body)
    assert (e['SCRIPT_NAME'], e['PATH_INFO'], e['QUERY_STRING']) == ('', '/staticky/page', 'x=1')
    e = json.loads(a.get('/').body)
    assert (e['SCRIPT_NAME'], e['PATH_INFO']) == ('', '/')
    a.stop()


def test_handler_mapped_scripts_need_execcgi(start_apache):
    """AddHandler wsgi-script .wsgi: served where Options ExecCGI is on (with
    PATH_INFO after the script), 403 where it is off, as mod_wsgi does."""
    a = start_apache('<Directory @APPS@/cgi>\nOptions +ExecCGI\nAddHandler wsgi-script .wsgi\n</Directory>\n'
                     '<Directory @APPS@/nocgi>\nOptions -ExecCGI\nAddHandler wsgi-script .wsgi\n</Directory>\n'
                     'Alias /cgi/ @APPS@/cgi/\nAlias /nocgi/ @APPS@/nocgi/\n', name='handler')
    for d in ('cgi', 'nocgi'):
        os.makedirs(os.path.join(a.apps, d))
        shutil.copy(os.path.join(a.apps, 'env.wsgi'), os.path.join(a.apps, d, 'env.wsgi'))
    r = a.get('/cgi/env.wsgi/extra/path?q=1')
    assert r.status == 200, a.error_log()[-2000:]
    e = json.loads(r.body)
    assert (e['SCRIPT_NAME'], e['PATH_INFO'], e['QUERY_STRING']) == ('/cgi/env.wsgi', '/extra/path', 'q=1')
    assert e['mod_wsgi.request_handler'] == 'wsgi-script'
    assert a.get('/nocgi/env.wsgi').status == 403
    assert a.wait_for_log('Options ExecCGI is off in this directory')
    a.stop()


def test_application_group_names(start_apache):
    """`WSGIApplicationGroup ""` is accepted (it is mod_wsgi's %{GLOBAL});
    an unknown expansion stops Apache with the reason."""
    a = start_apache('''
WSGIScriptAlias /empty @APPS@/env.wsgi
<Location /empty>
    WSGIApplicationGroup ""
</Location>
''', name='groups', mpm='event')
    r = a.get('/empty')
    assert r.status == 200
    assert json.loads(r.body)['mod_wsgi.application_group'] == ''
    a.stop()

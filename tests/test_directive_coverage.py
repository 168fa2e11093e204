"""Every directive mod_wsgi 6.0.5 registers (its command table, listed
below) is known to mod_wsgi_rs: one configuration using all of them starts
and serves, and the README's directive table has a row for each."""
import base64
import os
import subprocess

from harness import PYTHON

# mod_wsgi 6.0.5's command table (src/server/mod_wsgi.c), plus the 4.x
# WSGILazyInitialization, which mod_wsgi 6 still accepts.
MOD_WSGI_DIRECTIVES = '''
<WSGIInterpreterOptions WSGIAcceptMutex WSGIAccessScript WSGIApplicationGroup
WSGIAuthGroupScript WSGIAuthUserScript WSGICallableObject WSGICaseSensitivity
WSGIChunkedRequest WSGIDaemonProcess WSGIDestroyInterpreter WSGIDispatchScript
WSGIDontWriteBytecode WSGIEnableSendfile WSGIErrorOverride WSGIFreeThreading
WSGIGroupAuthoritative WSGIHandlerScript WSGIIgnoreActivity WSGIImportScript
WSGIMapHEADToGET WSGIPassApacheRequest WSGIPassAuthorization WSGIPerInterpreterGIL
WSGIProcessGroup WSGIPythonEggs WSGIPythonHashSeed WSGIPythonHome WSGIPythonOptimize
WSGIPythonPath WSGIPythonWarnings WSGIRestrictEmbedded WSGIRestrictProcess
WSGIRestrictSignal WSGIRestrictStdin WSGIRestrictStdout WSGIScriptAlias
WSGIScriptAliasMatch WSGIScriptReloading WSGIServerMetrics WSGISlowRequests
WSGISocketPrefix WSGISocketRotation WSGISwitchInterval WSGITelemetryOptions
WSGITelemetryService WSGITrustedProxies WSGITrustedProxyHeaders WSGIVerboseDebugging
WSGILazyInitialization
'''.split()

CONF = r'''
WSGIPythonHome {home}
WSGIPythonPath @DIR@
WSGIPythonOptimize 0
WSGIPythonHashSeed 0
WSGIPythonWarnings ignore::DeprecationWarning
WSGIPythonEggs @DIR@
WSGIDontWriteBytecode On
WSGICaseSensitivity On
WSGIDestroyInterpreter On
WSGILazyInitialization On
WSGIVerboseDebugging Off
WSGISwitchInterval 0.005
WSGIPerInterpreterGIL Off
WSGIFreeThreading Off
WSGIRestrictStdin On
WSGIRestrictStdout Off
WSGIRestrictSignal On
WSGIRestrictEmbedded Off
WSGISocketPrefix @DIR@/wsgi
WSGISocketRotation On
WSGIAcceptMutex default
WSGIServerMetrics On
WSGISlowRequests 5
WSGITelemetryService unix:@DIR@/telemetry.sock interval=1
WSGITelemetryOptions +CaptureUserAgent
<WSGIInterpreterOptions application-group=%{{GLOBAL}}>
WSGISwitchInterval 0.01
</WSGIInterpreterOptions>
WSGIDaemonProcess cover processes=1 threads=2
WSGIImportScript @APPS@/hello.wsgi process-group=cover application-group=%{{GLOBAL}}
WSGIScriptAlias /hello @APPS@/hello.wsgi
WSGIScriptAliasMatch ^/match(/.*)?$ @APPS@/hello.wsgi
WSGIHandlerScript cover-handler @APPS@/handler.py
WSGIDispatchScript @APPS@/dispatch.py
WSGIPassApacheRequest Off
<Location /hello>
WSGIApplicationGroup %{{GLOBAL}}
WSGIProcessGroup cover
WSGIRestrictProcess cover
WSGICallableObject application
WSGIPassAuthorization Off
WSGIChunkedRequest Off
WSGIMapHEADToGET Auto
WSGIEnableSendfile Off
WSGIScriptReloading On
WSGIErrorOverride Off
WSGIIgnoreActivity Off
WSGITrustedProxyHeaders X-Forwarded-For
WSGITrustedProxies 127.0.0.1
WSGIAccessScript @APPS@/auth_access.wsgi
WSGIAuthUserScript @APPS@/auth_user.wsgi
WSGIAuthGroupScript @APPS@/auth_group.wsgi
WSGIGroupAuthoritative Off
AuthType Basic
AuthName cover
AuthBasicProvider wsgi
Require valid-user
</Location>
'''


def test_every_mod_wsgi_directive_is_accepted(start_apache):
    used = {line.split()[0] for line in CONF.splitlines() if line.strip().startswith(('WSGI', '<WSGI'))}
    assert used == set(MOD_WSGI_DIRECTIVES), set(MOD_WSGI_DIRECTIVES) ^ used
    home = subprocess.run([PYTHON, '-c', 'import sys; print(sys.base_prefix)'],
                          capture_output=True, text=True, check=True).stdout.strip()
    a = start_apache(CONF.format(home=home), name='coverage',
                     modules=['auth_basic', 'authn_core', 'authz_user'])
    log = a.error_log()
    assert 'not supported' not in log and 'not implemented' not in log
    r = a.get('/match')
    assert (r.status, r.body) == (200, b'Hello World!'), (r, a.error_log()[-2000:])
    # /hello has the auth scripts: no credentials, no entry.
    assert a.get('/hello').status == 401
    auth = 'Basic ' + base64.b64encode(b'alice:secret').decode()
    r = a.get('/hello', headers={'Authorization': auth})
    assert (r.status, r.body) == (200, b'Hello World!'), (r, a.error_log()[-2000:])


def test_readme_has_a_row_for_each():
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               'README.md')).read()
    rows = [line for line in readme.splitlines() if line.startswith('| `')]
    missing = [d for d in MOD_WSGI_DIRECTIVES
               if not any(r.startswith('| `' + d + ' ') or r.startswith('| `' + d + '`') for r in rows)]
    assert not missing, missing
    for d in MOD_WSGI_DIRECTIVES:
        row = next(r for r in rows if r.startswith('| `' + d))
        assert 'Not yet' not in row and 'not supported' not in row, row

"""mod_wsgi's auth hooks: WSGIAccessScript (access_checker), WSGIAuthUserScript
(the 'wsgi' provider of AuthBasicProvider/AuthDigestProvider) and
WSGIAuthGroupScript (Require wsgi-group), against the real Apache. The scripts
always run in Apache's children, also when the application runs in a daemon.
Their configuration errors are tested in test_config.py."""
import base64
import hashlib
import json
import os
import re
import time

import pytest

from conftest import server_fixture

AUTH_MODULES = ['auth_basic', 'auth_digest', 'authn_core', 'authz_user']

BASIC = """AuthType Basic
AuthName "wsgi test"
AuthBasicProvider wsgi
WSGIAuthUserScript @APPS@/auth_user.wsgi
"""

CONF = r"""
WSGIScriptAliasMatch ^/(basic|digest|group|staff|access|byhost|denyhost) @APPS@/auth_app.wsgi
<Location /basic>
%(basic)s
Require valid-user
</Location>
<Location /digest>
AuthType Digest
AuthName "wsgi realm"
AuthDigestProvider wsgi
WSGIAuthUserScript @APPS@/auth_user.wsgi
Require valid-user
</Location>
<Location /group>
%(basic)s
WSGIAuthGroupScript @APPS@/auth_group.wsgi
# Accepted, without effect in Apache 2.4 (as with mod_wsgi).
WSGIGroupAuthoritative Off
Require wsgi-group admins
</Location>
<Location /staff>
%(basic)s
WSGIAuthGroupScript @APPS@/auth_group.wsgi
WSGIAuthGroupAuthoritative On
Require wsgi-group nobody "staff"
</Location>
<Location /access>
WSGIAccessScript @APPS@/auth_access.wsgi
</Location>
<LocationMatch ^/(byhost|denyhost)>
WSGIAccessScript @APPS@/auth_access.wsgi
</LocationMatch>
""" % {'basic': BASIC}

# Every MPM, with the application embedded and in a daemon process group.
apache = server_fixture(CONF, modules=AUTH_MODULES)


def basic(user, password):
    token = base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
    return {'Authorization': 'Basic ' + token}


def served(r):
    assert r.status == 200, r
    return json.loads(r.body)


def log_since(apache, mark):
    return apache.error_log()[mark:]


def test_basic_right_password(apache):
    e = served(apache.get('/basic', headers=basic('alice', 'secret')))
    assert e['REMOTE_USER'] == 'alice' and e['AUTH_TYPE'] == 'Basic'


@pytest.mark.parametrize('user,password', [('alice', 'wrong'), ('nobody', 'secret')])
def test_basic_wrong_password_or_unknown_user(apache, user, password):
    mark = len(apache.error_log())
    r = apache.get('/basic', headers=basic(user, password))
    assert r.status == 401
    assert 'Basic realm="wsgi test"' in r.header('WWW-Authenticate')
    why = 'Password Mismatch' if user == 'alice' else 'user nobody not found'
    assert apache.wait_for_log(why), log_since(apache, mark)


def test_basic_without_credentials(apache):
    assert apache.get('/basic').status == 401


def test_str_result_replaces_the_user_name(apache):
    e = served(apache.get('/basic', headers=basic('renamed', 'pw')))
    assert e['REMOTE_USER'] == 'Renamed-User'
    assert apache.get('/basic', headers=basic('renamed', 'nope')).status == 401


def test_exception_is_a_500_with_traceback_and_the_next_request_works(apache):
    mark = len(apache.error_log())
    assert apache.get('/basic', headers=basic('boom', 'x')).status == 500
    assert apache.wait_for_log('RuntimeError: auth script exploded for boom')
    log = log_since(apache, mark)
    assert "Exception occurred processing WSGI script '%s/auth_user.wsgi'" % apache.apps in log
    assert 'Traceback (most recent call last):' in log
    assert served(apache.get('/basic', headers=basic('alice', 'secret')))['REMOTE_USER'] == 'alice'


def test_invalid_result_is_a_500(apache):
    assert apache.get('/basic', headers=basic('odd', 'x')).status == 500
    assert apache.wait_for_log('Basic auth provider must return True, False, None or user name as string.')


def test_credentials_never_reach_the_auth_environ(apache):
    # auth_user.wsgi raises (a 500) if it sees them.
    r = apache.get('/basic', headers=dict(basic('alice', 'secret'), **{'Proxy-Authorization': 'Basic eDp5'}))
    assert r.status == 200


def digest(apache, path, user, password):
    """GET path with a Digest response computed from Apache's challenge."""
    r = apache.get(path)
    assert r.status == 401, r
    challenge = r.header('WWW-Authenticate')
    assert challenge.startswith('Digest ')
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    realm, nonce, nc, cnonce = fields['realm'], fields['nonce'], '00000001', 'f00dfeed'
    ha1, ha2 = md5('%s:%s:%s' % (user, realm, password)), md5('GET:%s' % path)
    response = md5('%s:%s:%s:%s:auth:%s' % (ha1, nonce, nc, cnonce, ha2))
    auth = ('Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5, '
            'response="%s", qop=auth, nc=%s, cnonce="%s"' % (user, realm, nonce, path, response, nc, cnonce))
    return apache.get(path, headers={'Authorization': auth})


def test_digest_allowed(apache):
    e = served(digest(apache, '/digest', 'bob', 'hunter2'))
    assert e['REMOTE_USER'] == 'bob' and e['AUTH_TYPE'] == 'Digest'


@pytest.mark.parametrize('user,password', [('bob', 'wrong'), ('nobody', 'hunter2')])
def test_digest_denied(apache, user, password):
    assert digest(apache, '/digest', user, password).status == 401
    why = 'password mismatch' if user == 'bob' else "user `nobody' in realm `wsgi realm' not found"
    assert apache.wait_for_log(why)


def test_group_member_allowed(apache):
    assert served(apache.get('/group', headers=basic('alice', 'secret')))['REMOTE_USER'] == 'alice'
    # Any of the listed groups will do; bytes and str names both count.
    assert apache.get('/staff', headers=basic('alice', 'secret')).status == 200


@pytest.mark.parametrize('user,password,why', [
    ('bob', 'hunter2', 'User is not a member of designated groups.'),
    ('carol', 'pw', 'User is not a member of any groups.'),
])
def test_group_non_member_refused(apache, user, password, why):
    # Apache asks an authenticated user who is refused to log in again (401).
    r = apache.get('/group', headers=basic(user, password))
    assert r.status == 401
    assert apache.wait_for_log("Authorization of user '%s' to access '/group' failed. %s" % (user, why))


def test_group_needs_a_user(apache):
    assert apache.get('/group').status == 401


@pytest.mark.parametrize('how,status', [('allow', 200), ('pass', 200), ('deny', 403)])
def test_access_script_decides_from_the_environ(apache, how, status):
    assert apache.get('/access', headers={'X-Access': how}).status == status


def test_access_script_decides_from_the_host(apache):
    # No header: the script compares the host it is given (127.0.0.1 here).
    assert apache.get('/byhost').status == 200
    mark = len(apache.error_log())
    assert apache.get('/denyhost').status == 403
    assert apache.wait_for_log('Client denied by server configuration'), log_since(apache, mark)


@pytest.mark.parametrize('how,why', [
    ('boom', 'RuntimeError: access script exploded'),
    ('bad', "Result returned from 'allow_access' in '%s/auth_access.wsgi' must be a boolean or None."),
])
def test_access_script_failure_denies(apache, how, why):
    mark = len(apache.error_log())
    assert apache.get('/access', headers={'X-Access': how}).status == 403
    assert apache.wait_for_log(why.replace('%s', apache.apps)), log_since(apache, mark)
    assert 'Client denied by server configuration' in log_since(apache, mark)
    assert apache.get('/access', headers={'X-Access': 'allow'}).status == 200


def auth_environ(apache):
    mark = len(apache.error_log())
    assert apache.get('/access/sub/path?q=1', headers={'X-Access': 'dump', 'X-Custom': 'v',
                                                       'Authorization': 'Basic eDp5'}).status == 200
    assert apache.wait_for_log('AUTH-ENVIRON ')
    line = [l for l in log_since(apache, mark).splitlines() if 'AUTH-ENVIRON ' in l][0]
    return json.loads(line.split('AUTH-ENVIRON ', 1)[1])


def test_auth_environ_is_mod_wsgis_cut_down_set(apache):
    e = auth_environ(apache)
    assert e['host'] == '127.0.0.1'
    assert e['REQUEST_METHOD'] == 'GET' and e['REQUEST_URI'] == '/access/sub/path?q=1'
    assert e['QUERY_STRING'] == 'q=1' and e['HTTP_X_CUSTOM'] == 'v'
    assert e['SCRIPT_NAME'] + e['PATH_INFO'] == '/access/sub/path'
    assert e['REMOTE_ADDR'] == '127.0.0.1' and e['SERVER_PORT'] == str(apache.port)
    assert e['SERVER_SIGNATURE'] == ''  # ServerSignature is Off by default
    assert e['mod_wsgi.process_group'] == '' and e['mod_wsgi.application_group'] == ''
    assert e['apache.version']['type'] == 'tuple' and e['mod_wsgi.version']['type'] == 'tuple'
    assert e['versions'][0][:2] == [2, 4] and len(e['versions'][1]) == 3
    assert e['wsgi.errors']['type'] == 'TextIOWrapper'
    assert 'HTTP_AUTHORIZATION' not in e
    # Not a WSGI request: no body, no response.
    assert 'wsgi.input' not in e and 'wsgi.version' not in e


def test_mod_ssl_callables_over_plain_http(apache):
    e = auth_environ(apache)
    assert e['mod_ssl.is_https']['type'] == 'partial' and e['mod_ssl.var_lookup']['type'] == 'partial'
    assert e['is_https()'] == 0 and e['var_lookup()'] is None
    # Also from a thread of the script's own, while the hook runs.
    assert e['from_thread'] == '[(0, None)]'


def test_objects_kept_past_the_request_refuse(apache):
    """wsgi.errors and the mod_ssl callables, kept by the script from an
    earlier request, raise instead of touching a request that is gone."""
    for _ in range(20):  # prefork: until both requests reach the same child
        auth_environ(apache)
        mark = len(apache.error_log())
        assert apache.get('/access', headers={'X-Access': 'stale'}).status == 200
        assert apache.wait_for_log('AUTH-STALE ')
        line = [l for l in log_since(apache, mark).splitlines() if 'AUTH-STALE ' in l][-1]
        failures = json.loads(line.split('AUTH-STALE ', 1)[1])
        if failures is not None:
            break
    assert failures == ['errors: write() called on wsgi.errors after request completed', 'ssl: request object has expired',
                        'lookup: request object has expired', 'bad arg: TypeError', 'bad arg: TypeError']


def test_scripts_run_in_apaches_children(apache):
    """In daemon mode the application runs in the daemon, the auth script
    in the Apache child that took the request."""
    mark = len(apache.error_log())
    e = served(apache.get('/basic', headers=basic('alice', 'secret')))
    assert apache.wait_for_log('AUTH-RAN ')
    ran = re.findall(r'AUTH-RAN pid=(\d+) group=\'\' user=alice', log_since(apache, mark))
    assert ran
    auth_pid = int(ran[-1])
    if apache.mode == 'daemon':
        assert e['process_group'] == 'testd'
        assert e['pid'] != auth_pid and auth_pid in apache.children()
    else:
        assert e['pid'] == auth_pid


DAEMON_CONF = r"""
WSGIRestrictEmbedded On
WSGIDaemonProcess authd processes=1 threads=4
WSGIScriptAlias /daemon @APPS@/auth_app.wsgi process-group=authd application-group=%{GLOBAL}
WSGIScriptAlias /embedded @APPS@/auth_app.wsgi
<Location /daemon>
AuthType Basic
AuthName "wsgi test"
AuthBasicProvider wsgi
WSGIAuthUserScript @APPS@/auth_user.wsgi application-group=authgroup
Require valid-user
</Location>
"""


@pytest.mark.parametrize('mpm', ['event', 'prefork'])
def test_daemon_application_with_restricted_embedded_mode(start_apache, mpm):
    """WSGIRestrictEmbedded On: Python still starts in the children for the
    auth script, which runs in its application-group=, not in the daemon."""
    a = start_apache(DAEMON_CONF, mpm=mpm, modules=AUTH_MODULES, name='auth-daemon')
    e = served(a.get('/daemon', headers=basic('alice', 'secret')))
    assert e['REMOTE_USER'] == 'alice' and e['process_group'] == 'authd'
    assert a.wait_for_log('AUTH-RAN ')
    ran = re.findall(r"AUTH-RAN pid=(\d+) group='authgroup' user=alice", a.error_log())
    assert ran, a.error_log()[-3000:]
    auth_pid = int(ran[-1])
    assert auth_pid != e['pid'] and auth_pid in a.children()
    assert "Create interpreter 'authgroup'" in a.error_log()
    assert a.get('/daemon', headers=basic('alice', 'bad')).status == 401
    # Embedded applications stay refused.
    assert a.get('/embedded').status == 500
    a.stop()


RELOAD_V1 = "def check_password(environ, user, password):\n    return password == 'one'\n"
RELOAD_V2 = "def check_password(environ, user, password):\n    return password == 'two'\n"


@pytest.mark.parametrize('reloading', ['On', 'Off'])
def test_auth_script_reloading(start_apache, reloading):
    conf = ('WSGIScriptAlias /r @APPS@/auth_app.wsgi\nWSGIScriptReloading %s\n'
            '<Location /r>\n%s\nRequire valid-user\n</Location>\n'
            % (reloading, BASIC.replace('auth_user.wsgi', 'auth_reload.wsgi')))
    a = start_apache(conf, mpm='event', modules=AUTH_MODULES, name='auth-reload')
    script = os.path.join(a.apps, 'auth_reload.wsgi')
    with open(script, 'w') as f:
        f.write(RELOAD_V1)
    assert a.get('/r', headers=basic('u', 'one')).status == 200
    assert a.get('/r', headers=basic('u', 'two')).status == 401
    with open(script, 'w') as f:
        f.write(RELOAD_V2)
    later = time.time() + 5
    os.utime(script, (later, later))
    if reloading == 'On':
        assert a.get('/r', headers=basic('u', 'two')).status == 200
        assert a.get('/r', headers=basic('u', 'one')).status == 401
        assert a.wait_for_log("Reloading Python script file '%s'" % script)
    else:
        assert a.get('/r', headers=basic('u', 'one')).status == 200
        assert a.get('/r', headers=basic('u', 'two')).status == 401
    a.stop()


def test_htaccess_with_authconfig(start_apache):
    """The directives work in .htaccess where AllowOverride AuthConfig allows them."""
    conf = ('WSGIScriptAlias /ht @DIR@/ht/app.wsgi\n'
            '<Directory @DIR@/ht>\nAllowOverride AuthConfig\nRequire all granted\n</Directory>\n'
            'WSGIScriptAlias /fi @DIR@/fi/app.wsgi\n'
            '<Directory @DIR@/fi>\nAllowOverride FileInfo\nRequire all granted\n</Directory>\n')
    a = start_apache(conf, modules=AUTH_MODULES, name='auth-htaccess')
    htaccess = BASIC.replace('@APPS@', a.apps) + 'Require valid-user\n'
    for d in ('ht', 'fi'):
        os.makedirs(os.path.join(a.dir, d))
        with open(os.path.join(a.apps, 'auth_app.wsgi')) as src, \
                open(os.path.join(a.dir, d, 'app.wsgi'), 'w') as dst:
            dst.write(src.read())
        with open(os.path.join(a.dir, d, '.htaccess'), 'w') as f:
            f.write(htaccess)
    assert a.get('/ht').status == 401
    assert served(a.get('/ht', headers=basic('carol', 'pw')))['REMOTE_USER'] == 'carol'
    # AuthConfig not allowed there: Apache refuses the .htaccess file.
    assert a.get('/fi', headers=basic('carol', 'pw')).status == 500
    assert a.wait_for_log('not allowed here')
    a.stop()


def test_tls_is_https(start_apache, public_tmp):
    """Over mod_ssl, mod_ssl.is_https() is 1 and var_lookup() finds SSL variables."""
    import http.client
    import ssl
    import subprocess
    key, crt = public_tmp / 'k.pem', public_tmp / 'c.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj',
                    '/CN=127.0.0.1', '-keyout', str(key), '-out', str(crt)], check=True, capture_output=True)
    key.chmod(0o644)
    conf = ('WSGIScriptAlias /access @APPS@/auth_app.wsgi\nSSLEngine on\n'
            'SSLCertificateFile %s\nSSLCertificateKeyFile %s\n'
            '<Location /access>\nWSGIAccessScript @APPS@/auth_access.wsgi\n</Location>\n' % (crt, key))
    a = start_apache(conf, modules=['socache_shmcb', 'ssl'], name='auth-tls')
    conn = http.client.HTTPSConnection('127.0.0.1', a.port, context=ssl._create_unverified_context(), timeout=10)
    conn.request('GET', '/access', headers={'X-Access': 'dump'})
    assert conn.getresponse().status == 200
    conn.close()
    assert a.wait_for_log('AUTH-ENVIRON ')
    line = [l for l in a.error_log().splitlines() if 'AUTH-ENVIRON ' in l][0]
    e = json.loads(line.split('AUTH-ENVIRON ', 1)[1])
    assert e['is_https()'] == 1 and e['var_lookup()'].startswith('TLSv1')
    assert e['from_thread'] == "[(1, 'on')]"
    a.stop()


def test_concurrent_requests(apache):
    """Many threads of the child authenticate at once (one interpreter)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i):
        user, password = [('alice', 'secret'), ('bob', 'hunter2'), ('alice', 'bad')][i % 3]
        return apache.get('/group', headers=basic(user, password)).status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(48)))
    assert statuses == [200, 401, 401] * 16

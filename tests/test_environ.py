"""The WSGI environ, compared with what mod_wsgi provides."""
import json

from conftest import server_fixture

CONF = r"""
WSGIScriptAlias /env @APPS@/env.wsgi
WSGIScriptAlias /auth @APPS@/env.wsgi pass-authorization=On
WSGIScriptAliasMatch ^/match/([^/]+) @APPS@/$1.wsgi
WSGIScriptAlias /dir/ @APPS@/
WSGIScriptAlias /modules @APPS@/modules.wsgi
SetEnv MY_SETENV hello-from-setenv
SetEnv HTTPS off
SetEnvIf User-Agent "^special-agent" AGENT_FLAG=1
RewriteEngine On
RewriteRule ^/env/rewritten - [E=REWRITTEN:yes]
"""

apache = server_fixture(CONF)


def env(apache, path, **kw):
    r = apache.get(path, **kw)
    assert r.status == 200, (r, apache.error_log()[-2000:])
    return json.loads(r.body)


def test_cgi_variables(apache):
    e = env(apache, '/env/sub/path?a=1&b=2', headers={'X-Custom-Header': 'abc'})
    assert e['REQUEST_METHOD'] == 'GET'
    assert e['SCRIPT_NAME'] == '/env'
    assert e['PATH_INFO'] == '/sub/path'
    assert e['QUERY_STRING'] == 'a=1&b=2'
    assert e['REQUEST_URI'] == '/env/sub/path?a=1&b=2'
    assert e['SERVER_NAME'] == '127.0.0.1'
    assert e['SERVER_PORT'] == str(apache.port)
    assert e['SERVER_ADDR'] == '127.0.0.1'
    assert e['SERVER_PROTOCOL'] == 'HTTP/1.1'
    assert e['SERVER_SOFTWARE'].startswith('Apache/2.4')
    assert e['REMOTE_ADDR'] == '127.0.0.1'
    assert int(e['REMOTE_PORT']) > 0
    assert e['REQUEST_SCHEME'] == 'http'
    assert 'GATEWAY_INTERFACE' not in e  # dropped by mod_wsgi 6
    assert e['DOCUMENT_ROOT'] == apache.dir
    assert e['SCRIPT_FILENAME'] == apache.apps + '/env.wsgi'
    assert e['HTTP_X_CUSTOM_HEADER'] == 'abc'
    assert e['HTTP_HOST'] == '127.0.0.1:%d' % apache.port
    assert 'PATH' not in e


def test_wsgi_keys(apache):
    e = env(apache, '/env')
    assert e['wsgi.version'] == {'type': 'tuple', 'repr': '(1, 0)'}
    assert e['wsgi.url_scheme'] == 'http'
    assert e['wsgi.input_terminated'] == {'type': 'bool', 'repr': 'True'}
    assert e['wsgi.run_once']['repr'] == 'False'
    if apache.mode == 'daemon':
        # processes=1 threads=8: giving processes= at all means multiprocess (mod_wsgi's rule).
        multiprocess, threaded, group = True, True, 'testd'
    else:
        # The harness runs event/worker with one child of 8 threads, prefork with 4 children.
        multiprocess, threaded, group = apache.mpm == 'prefork', apache.mpm != 'prefork', ''
    assert e['wsgi.multiprocess']['repr'] == repr(multiprocess)
    assert e['wsgi.multithread']['repr'] == repr(threaded)
    assert e['wsgi.input']['type'] == 'Input'
    assert e['wsgi.errors']['type'] == 'TextIOWrapper'
    assert e['wsgi.file_wrapper']['type'] == 'type'
    assert e['mod_wsgi.process_group'] == group
    # The default application group is mod_wsgi's %{RESOURCE}.
    assert e['mod_wsgi.application_group'] == '127.0.0.1:%d|/env' % apache.port
    assert e['mod_wsgi.callable_object'] == 'application'
    assert e['mod_wsgi.request_handler'] == 'wsgi-script'
    assert e['mod_wsgi.listener_port'] == str(apache.port)
    assert e['mod_wsgi.version'] == {'type': 'tuple', 'repr': '(6, 0, 5)'}
    assert e['mod_wsgi.thread_id']['type'] == 'int'
    assert e['apache.version']['repr'].startswith('(2, 4,')


def test_request_id_and_server_pid(apache):
    """mod_wsgi.request_id is Apache's request log id (%L); server_pid is the
    Apache child's pid (a str), in a daemon process too."""
    first, second = env(apache, '/env'), env(apache, '/env')
    assert first['mod_wsgi.request_id'] and second['mod_wsgi.request_id']
    assert first['mod_wsgi.request_id'] != second['mod_wsgi.request_id']
    assert int(first['mod_wsgi.server_pid']) in apache.children()
    assert 'mod_wsgi.connection_id' not in first  # no %{c}L: Apache made no connection log id


def test_mod_wsgi_6_keys_and_types(apache):
    """mod_wsgi 6's environ: the request's instants as floats in seconds
    (queue_start and daemon_start 0.0 in embedded mode); the 4.x carriers
    (script_start, thread_requests, total_requests, script_reloading,
    enable_sendfile, ignore_activity) are gone."""
    import time
    before = time.time()
    e = env(apache, '/env')
    t = {k: e[k]['type'] for k in ('mod_wsgi.request_start', 'mod_wsgi.queue_start',
                                    'mod_wsgi.daemon_start', 'mod_wsgi.application_start')}
    assert set(t.values()) == {'float'}, t
    v = {k.split('.')[1]: float(e[k]['repr']) for k in t}
    if apache.mode == 'daemon':
        assert v['request_start'] <= v['queue_start'] <= v['daemon_start'] <= v['application_start']
    else:
        assert v['queue_start'] == v['daemon_start'] == 0.0
    assert before - 5 < v['request_start'] <= v['application_start'] < before + 60
    for gone in ('script_start', 'thread_requests', 'total_requests', 'script_reloading',
                 'enable_sendfile', 'ignore_activity', 'daemon_connects', 'daemon_restarts'):
        assert 'mod_wsgi.' + gone not in e, gone
    assert not [k for k in e if k.startswith('mod_wsgi.x-')]


def test_mod_wsgi_and_apache_modules(apache):
    m = json.loads(apache.get('/modules').body)
    threads = 8 if apache.mpm != 'prefork' else 1
    processes = 1 if apache.mpm != 'prefork' else 4
    group = 'testd' if apache.mode == 'daemon' else ''
    assert m['mod_wsgi']['process_group'] == group and m['mod_wsgi']['application_group'] == '127.0.0.1:%d|/modules' % apache.port
    a = m['apache']
    assert a['mpm_name'] == apache.mpm
    assert (a['threads_per_process'], a['maximum_processes']) == (threads, processes)
    # mod_wsgi's own numbers are where the application runs: the daemon group's (processes=1 threads=8).
    served_by = (8, 1) if apache.mode == 'daemon' else (threads, processes)
    assert (m['mod_wsgi']['threads_per_process'], m['mod_wsgi']['maximum_processes']) == served_by
    assert a['version'][:2] == [2, 4]
    assert a['description'].startswith('Apache/2.4') and 'mod_wsgi_rs/' in a['description']
    assert a['build_date']


def test_every_cgi_value_is_a_native_str(apache):
    e = env(apache, '/env/x?y', headers={'X-A': 'b'})
    for k, v in e.items():
        if '.' not in k:
            assert isinstance(v, str), k


def test_script_name_and_path_info_split(apache):
    assert (env(apache, '/env')['SCRIPT_NAME'], env(apache, '/env')['PATH_INFO']) == ('/env', '')
    e = env(apache, '/env/')
    assert (e['SCRIPT_NAME'], e['PATH_INFO']) == ('/env', '/')
    e = env(apache, '/env//a//b?x')
    assert (e['SCRIPT_NAME'], e['PATH_INFO'], e['REQUEST_URI']) == ('/env', '/a/b', '/env//a//b?x')
    assert apache.get('/envXYZ').status == 404


def test_alias_match_substitutes_and_splits(apache):
    e = env(apache, '/match/env/x/y?q=1')
    assert e['SCRIPT_NAME'] == '/match/env'
    assert e['PATH_INFO'] == '/x/y'
    assert e['SCRIPT_FILENAME'] == apache.apps + '/env.wsgi'
    assert apache.get('/match/nonexistent').status == 404


def test_directory_alias(apache):
    e = env(apache, '/dir/env.wsgi/extra/path')
    assert e['SCRIPT_NAME'] == '/dir/env.wsgi'
    assert e['PATH_INFO'] == '/extra/path'


def test_unicode_path_and_query(apache):
    e = env(apache, '/env/%C3%A9t%C3%A9?q=%C3%A9&r=%20x')
    assert e['PATH_INFO'].encode('latin-1').decode('utf-8') == '/été'
    assert e['QUERY_STRING'] == 'q=%C3%A9&r=%20x'
    assert e['REQUEST_URI'] == '/env/%C3%A9t%C3%A9?q=%C3%A9&r=%20x'


def test_header_values_are_latin1(apache):
    e = env(apache, '/env', headers={'X-Latin': 'caf\xe9'.encode('latin-1')})
    assert e['HTTP_X_LATIN'] == 'caf\xe9'


def test_headers_with_underscores_are_dropped(apache):
    e = env(apache, '/env', headers={'X_Under_Score': 'spoof', 'X-Under-Score': 'real'})
    assert e['HTTP_X_UNDER_SCORE'] == 'real'
    e = env(apache, '/env', headers={'X_Only_Underscore': 'spoof'})
    assert 'HTTP_X_ONLY_UNDERSCORE' not in e


def test_content_headers_have_no_http_twins(apache):
    r = apache.post('/env', b'a=1', headers={'Content-Type': 'application/x-www-form-urlencoded'})
    e = json.loads(r.body)
    assert e['CONTENT_TYPE'] == 'application/x-www-form-urlencoded'
    assert e['CONTENT_LENGTH'] == '3'
    assert 'HTTP_CONTENT_TYPE' not in e and 'HTTP_CONTENT_LENGTH' not in e


def test_authorization_needs_pass_authorization(apache):
    h = {'Authorization': 'Basic dXNlcjpwYXNz', 'Proxy': 'http://evil'}
    assert 'HTTP_AUTHORIZATION' not in env(apache, '/env', headers=h)
    e = env(apache, '/auth', headers=h)
    assert e['HTTP_AUTHORIZATION'] == 'Basic dXNlcjpwYXNz'
    assert 'HTTP_PROXY' not in e


def test_setenv_setenvif_and_rewrite_variables(apache):
    e = env(apache, '/env/rewritten', headers={'User-Agent': 'special-agent/1'})
    assert e['MY_SETENV'] == 'hello-from-setenv'
    assert e['AGENT_FLAG'] == '1'
    assert e['REWRITTEN'] == 'yes'
    assert 'HTTPS' not in e  # consumed into wsgi.url_scheme
    assert e['wsgi.url_scheme'] == 'http'


def test_https_variable_sets_url_scheme(start_apache):
    a = start_apache('WSGIScriptAlias /env @APPS@/env.wsgi\nSetEnv HTTPS on\n', name='https')
    e = json.loads(a.get('/env').body)
    assert e['wsgi.url_scheme'] == 'https'
    assert 'HTTPS' not in e
    a.stop()


def test_tls_connection(start_apache, public_tmp):
    """A real mod_ssl vhost: url_scheme/REQUEST_SCHEME https, no HTTPS key,
    SSL_* variables when SSLOptions +StdEnvVars asks for them."""
    import ssl
    import subprocess
    import http.client
    key, crt = public_tmp / 'k.pem', public_tmp / 'c.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj',
                    '/CN=127.0.0.1', '-keyout', str(key), '-out', str(crt)], check=True, capture_output=True)
    key.chmod(0o644)
    conf = ('WSGIScriptAlias /env @APPS@/env.wsgi\nSSLEngine on\n'
            'SSLCertificateFile %s\nSSLCertificateKeyFile %s\n'
            '<Location /env/vars>\nSSLOptions +StdEnvVars\n</Location>\n' % (crt, key))
    a = start_apache(conf, modules=['socache_shmcb', 'ssl'], name='tls')
    ctx = ssl._create_unverified_context()

    def get(path):
        conn = http.client.HTTPSConnection('127.0.0.1', a.port, context=ctx, timeout=10)
        conn.request('GET', path)
        r = conn.getresponse()
        assert r.status == 200
        body = json.loads(r.read())
        conn.close()
        return body

    e = get('/env')
    assert e['wsgi.url_scheme'] == 'https' and e['REQUEST_SCHEME'] == 'https'
    assert e['SERVER_PORT'] == str(a.port)
    assert 'HTTPS' not in e and not any(k.startswith('SSL_') for k in e)
    e = get('/env/vars')
    assert e['SSL_PROTOCOL'].startswith('TLSv1') and 'HTTPS' not in e
    assert e['wsgi.url_scheme'] == 'https'
    a.stop()

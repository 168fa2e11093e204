"""WSGITrustedProxyHeaders / WSGITrustedProxies: forwarded headers applied to
the environ as mod_wsgi applies them (the tests connect from 127.0.0.1).
Their configuration errors are tested in test_config.py."""
import json
import os
import re
import shutil

import pytest

from conftest import MPMS, server_fixture

CONF = r"""
WSGIScriptAliasMatch ^/(plain|all|synonyms|untrusted|walk|cidr|ssl) @APPS@/env.wsgi
# Server-wide; a <Location> with its own list replaces it.
WSGITrustedProxyHeaders X-Forwarded-Port
<Location /all>
WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Host
WSGITrustedProxyHeaders x-forwarded-server X-Forwarded-Port X-Script-Name X-Forwarded-Proto
</Location>
<Location /synonyms>
WSGITrustedProxyHeaders X-Real-IP X-Host X-Forwarded-Script-Name X-Forwarded-SSL
</Location>
<Location /untrusted>
WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Host X-Script-Name X-Forwarded-Proto X-Forwarded-Port
WSGITrustedProxies 10.0.0.1
</Location>
<Location /walk>
WSGITrustedProxyHeaders X-Forwarded-For
WSGITrustedProxies 127.0.0.1 10.0.0.2 10.0.0.3
</Location>
<Location /cidr>
WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-HTTPS
WSGITrustedProxies 10.0.0.0/8 127.0.0.0/8 ::1
</Location>
<Location /ssl>
WSGITrustedProxyHeaders X-HTTPS
</Location>
"""

apache = server_fixture(CONF)


def env(apache, path, headers):
    r = apache.get(path, headers=headers)
    assert r.status == 200, (r, apache.error_log()[-2000:])
    return json.loads(r.body)


def test_unlisted_headers_pass_through(apache):
    e = env(apache, '/plain', {'X-Forwarded-For': '1.2.3.4', 'X-Forwarded-Proto': 'https',
                               'X-Forwarded-Port': '8080'})
    assert e['SERVER_PORT'] == '8080'  # the server-wide list
    assert e['REMOTE_ADDR'] == '127.0.0.1'
    assert e['HTTP_X_FORWARDED_FOR'] == '1.2.3.4'
    assert e['wsgi.url_scheme'] == 'http'
    assert 'mod_wsgi.mount_point' not in e


def test_every_category_applied(apache):
    e = env(apache, '/all/sub', {
        'X-Forwarded-For': '1.2.3.4, 5.6.7.8',
        'X-Forwarded-Host': 'front.example:8443',
        'X-Forwarded-Server': 'front.example',
        'X-Forwarded-Port': '8443',
        'X-Script-Name': '/mounted',
        'X-Forwarded-Proto': 'https',
    })
    assert e['REMOTE_ADDR'] == '1.2.3.4'
    assert e['HTTP_X_FORWARDED_FOR'] == '1.2.3.4, 5.6.7.8'  # left as is without a trust list
    assert e['HTTP_HOST'] == 'front.example:8443'
    assert e['SERVER_NAME'] == 'front.example'
    assert e['SERVER_PORT'] == '8443'
    assert e['SCRIPT_NAME'] == '/mounted'
    assert e['PATH_INFO'] == '/sub'
    assert e['mod_wsgi.mount_point'] == '/mounted'
    assert e['mod_wsgi.script_name'] == '/all'  # the value before rewriting
    assert e['wsgi.url_scheme'] == 'https'
    assert 'HTTPS' not in e


def test_spoofed_synonyms_are_stripped(apache):
    e = env(apache, '/all', {
        'X-Forwarded-For': '1.2.3.4',
        'X-Real-IP': '6.6.6.6', 'X-Client-IP': '6.6.6.7',
        'X-Host': 'evil.example', 'X-Forwarded-Script-Name': '/evil',
        'X-Forwarded-SSL': 'on', 'X-Scheme': 'https', 'X-HTTPS': '1',
    })
    assert e['REMOTE_ADDR'] == '1.2.3.4'
    assert e['HTTP_HOST'] == '127.0.0.1:%d' % apache.port
    assert e['SCRIPT_NAME'] == '/all'
    assert e['wsgi.url_scheme'] == 'http'
    for gone in ('HTTP_X_REAL_IP', 'HTTP_X_CLIENT_IP', 'HTTP_X_HOST', 'HTTP_X_FORWARDED_SCRIPT_NAME',
                 'HTTP_X_FORWARDED_SSL', 'HTTP_X_SCHEME', 'HTTP_X_HTTPS'):
        assert gone not in e, gone
    assert 'mod_wsgi.mount_point' not in e


def test_other_members_of_each_category(apache):
    e = env(apache, '/synonyms', {
        'X-Real-IP': '9.8.7.6', 'X-Forwarded-For': '6.6.6.6',
        'X-Host': 'other.example', 'X-Forwarded-Host': 'evil.example',
        'X-Forwarded-Script-Name': '/base', 'X-Script-Name': '/evil',
        'X-Forwarded-SSL': 'On', 'X-Forwarded-Proto': 'http',
    })
    assert e['REMOTE_ADDR'] == '9.8.7.6'
    assert e['HTTP_HOST'] == 'other.example'
    assert e['SCRIPT_NAME'] == '/base'
    assert e['mod_wsgi.mount_point'] == '/base'
    assert e['wsgi.url_scheme'] == 'https'
    for gone in ('HTTP_X_FORWARDED_FOR', 'HTTP_X_FORWARDED_HOST', 'HTTP_X_SCRIPT_NAME', 'HTTP_X_FORWARDED_PROTO'):
        assert gone not in e, gone
    assert e['HTTP_X_REAL_IP'] == '9.8.7.6'
    e = env(apache, '/synonyms', {'X-Forwarded-Port': '8080'})
    assert e['SERVER_PORT'] == str(apache.port)  # this section's list replaces the server's


@pytest.mark.parametrize('value,scheme', [('1', 'https'), ('true', 'https'), ('OFF', 'http'),
                                          ('false', 'http'), ('bogus', 'http')])
def test_boolean_scheme_headers(apache, value, scheme):
    assert env(apache, '/ssl', {'X-HTTPS': value})['wsgi.url_scheme'] == scheme


def test_untrusted_peer_headers_ignored_and_category_stripped(apache):
    e = env(apache, '/untrusted', {
        'X-Forwarded-For': '1.2.3.4', 'X-Real-IP': '6.6.6.6',
        'X-Forwarded-Host': 'front.example', 'X-Host': 'evil.example',
        'X-Script-Name': '/mounted', 'X-Forwarded-Proto': 'https', 'X-Forwarded-SSL': 'on',
        'X-Forwarded-Port': '8443',
    })
    assert e['REMOTE_ADDR'] == '127.0.0.1'
    assert e['HTTP_HOST'] == '127.0.0.1:%d' % apache.port
    assert e['SCRIPT_NAME'] == '/untrusted'
    assert e['SERVER_PORT'] == str(apache.port)
    assert e['wsgi.url_scheme'] == 'http'
    assert 'mod_wsgi.mount_point' not in e
    # As in mod_wsgi, an untrusted peer's headers of a listed category are all
    # removed, the listed ones too; X-Forwarded-Port has no synonyms and stays.
    for gone in ('HTTP_X_FORWARDED_FOR', 'HTTP_X_REAL_IP', 'HTTP_X_FORWARDED_HOST', 'HTTP_X_HOST',
                 'HTTP_X_SCRIPT_NAME', 'HTTP_X_FORWARDED_PROTO', 'HTTP_X_FORWARDED_SSL'):
        assert gone not in e, gone
    assert e['HTTP_X_FORWARDED_PORT'] == '8443'


@pytest.mark.parametrize('xff,remote,rewritten', [
    # Right to left past the trusted proxies: the first untrusted is the client.
    ('1.2.3.4, 10.0.0.2, 127.0.0.1', '1.2.3.4', '1.2.3.4, 10.0.0.2, 127.0.0.1'),
    ('6.6.6.6, 1.2.3.4, 10.0.0.3, 10.0.0.2', '1.2.3.4', '1.2.3.4, 10.0.0.3, 10.0.0.2'),
    # Nothing trusted: the last element, and only it remains.
    ('6.6.6.6, 1.2.3.4', '1.2.3.4', '1.2.3.4'),
    # Empty elements are skipped.
    (' ,6.6.6.6,, 1.2.3.4 ,, 10.0.0.2, ', '1.2.3.4', '1.2.3.4, 10.0.0.2'),
    # Everything trusted: the leftmost.
    ('10.0.0.3, 10.0.0.2', '10.0.0.3', '10.0.0.3, 10.0.0.2'),
    # A non-address stops the walk, and is what the client is said to be.
    ('6.6.6.6, junk, 10.0.0.2', 'junk', 'junk, 10.0.0.2'),
])
def test_forwarded_for_walk_with_trust_list(apache, xff, remote, rewritten):
    e = env(apache, '/walk', {'X-Forwarded-For': xff})
    assert e['REMOTE_ADDR'] == remote
    assert e['HTTP_X_FORWARDED_FOR'] == rewritten


def test_cidr_trust_list(apache):
    e = env(apache, '/cidr', {'X-Forwarded-For': '8.8.8.8, 10.1.2.3, 10.200.0.1',
                              'X-Forwarded-HTTPS': 'On', 'X-Forwarded-Proto': 'http'})
    assert e['REMOTE_ADDR'] == '8.8.8.8'
    assert e['HTTP_X_FORWARDED_FOR'] == '8.8.8.8, 10.1.2.3, 10.200.0.1'
    assert e['wsgi.url_scheme'] == 'https'
    assert 'HTTP_X_FORWARDED_PROTO' not in e


HTACCESS_CONF = ''.join('WSGIScriptAlias /%s/ @APPS@/%s/\n<Directory @APPS@/%s>\nAllowOverride FileInfo\n</Directory>\n'
                        % (d, d, d) for d in ('ht', 'htbad'))


def test_htaccess(start_apache):
    a = start_apache(HTACCESS_CONF, mpm=MPMS[0], name='proxyhtaccess')
    for d, htaccess in [('ht', 'WSGITrustedProxyHeaders X-Forwarded-Proto X-Real-IP\n'
                               'WSGITrustedProxies 127.0.0.1/32\n'),
                        ('htbad', 'WSGITrustedProxies 127.0.0.1/40\n')]:
        os.makedirs(os.path.join(a.apps, d))
        os.chmod(os.path.join(a.apps, d), 0o755)
        shutil.copy(os.path.join(a.apps, 'env.wsgi'), os.path.join(a.apps, d, 'env.wsgi'))
        os.chmod(os.path.join(a.apps, d, 'env.wsgi'), 0o644)
        with open(os.path.join(a.apps, d, '.htaccess'), 'w') as f:
            f.write(htaccess)
        os.chmod(os.path.join(a.apps, d, '.htaccess'), 0o644)
    e = env(a, '/ht/env.wsgi', {'X-Forwarded-Proto': 'https', 'X-Real-IP': '1.2.3.4', 'X-Scheme': 'http'})
    assert (e['wsgi.url_scheme'], e['REMOTE_ADDR']) == ('https', '1.2.3.4')
    assert 'HTTP_X_SCHEME' not in e
    assert a.get('/htbad/env.wsgi').status == 500
    assert re.search(r'/htbad/\.htaccess: WSGITrustedProxies.*Unable to parse trusted proxy', a.error_log()), \
        a.error_log()[-2000:]

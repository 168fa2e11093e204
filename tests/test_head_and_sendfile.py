"""WSGIMapHEADToGET On|Off|Auto and WSGIEnableSendfile On|Off, in embedded
and daemon mode (the decisions are made in the Apache child)."""
import os
import shutil

import pytest

from conftest import MODES, in_mode, server_fixture



def mounts(script, locations):
    """WSGIScriptAlias /name for each name, with its <Location> directives."""
    return ''.join('WSGIScriptAlias /%s @APPS@/%s\n<Location /%s>\n%s\n</Location>\n'
                   % (name, script, name, '\n'.join(directives))
                   for name, directives in locations.items())


HEAD_CONF = mounts('head.wsgi', {
    'auto_plain': [],
    'auto_setfilter': ['SetOutputFilter DEFLATE'],
    'auto_bytype': ['AddOutputFilterByType DEFLATE text/plain'],
    'auto_headers': ['Header set X-Fixup yes'],
    'on_plain': ['WSGIMapHEADToGET On'],
    'off_plain': ['WSGIMapHEADToGET Off'],
    'off_setfilter': ['WSGIMapHEADToGET Off', 'SetOutputFilter DEFLATE'],
    'off_bytype': ['WSGIMapHEADToGET off', 'AddOutputFilterByType DEFLATE text/plain'],
})

apache = server_fixture(HEAD_CONF)

GZIP = {'Accept-Encoding': 'gzip'}

# What the application sees for HEAD, per location.
HEAD_SEEN = [
    ('/auto_plain', 'HEAD'),        # Auto, no filter that may change the content
    ('/auto_setfilter', 'GET'),     # Auto with SetOutputFilter DEFLATE
    ('/auto_bytype', 'GET'),        # Auto with AddOutputFilterByType (mod_filter's harness)
    ('/auto_headers', 'GET'),       # Auto: mod_headers' FIXUP_HEADERS_OUT is a content-set filter
    ('/on_plain', 'GET'),
    ('/off_plain', 'HEAD'),
    ('/off_setfilter', 'HEAD'),
    ('/off_bytype', 'HEAD'),
]


def raw_head(a, path, extra=b''):
    """The exact bytes Apache sends for a HEAD request (connection closed)."""
    raw = a.raw(b'HEAD ' + path.encode() + b' HTTP/1.1\r\nHost: x\r\n' + extra
                + b'Connection: close\r\n\r\n', timeout=10)
    head, sep, body = raw.partition(b'\r\n\r\n')
    assert sep, raw
    return head.decode('latin-1'), body


@pytest.mark.parametrize('path,seen', HEAD_SEEN)
def test_head_method_seen_by_the_application(apache, path, seen):
    r = apache.request('HEAD', path, headers=GZIP)
    assert r.status == 200 and r.body == b''
    assert r.header('X-Method') == seen, (apache.mode, r.headers)
    head, body = raw_head(apache, path, b'Accept-Encoding: gzip\r\n')
    assert head.startswith('HTTP/1.1 200') and body == b'', (head, body)
    assert 'X-Method: %s' % seen in head, head


@pytest.mark.parametrize('path,_', HEAD_SEEN)
def test_get_is_always_get(apache, path, _):
    r = apache.get(path, headers=GZIP)
    assert r.status == 200 and r.header('X-Method') == 'GET'


@pytest.mark.parametrize('path', ['/auto_setfilter', '/auto_bytype'])
def test_mapped_head_has_gets_headers(apache, path):
    """Mapped to GET, DEFLATE sees the body, so HEAD's Content-Encoding and
    Vary are GET's."""
    g = apache.get(path, headers=GZIP)
    h = apache.request('HEAD', path, headers=GZIP)
    assert g.header('Content-Encoding') == 'gzip'
    for name in ('Content-Encoding', 'Vary', 'Content-Type'):
        assert h.header(name) == g.header(name), (name, h.headers, g.headers)


def test_head_without_filter_keeps_the_length(apache):
    """Not mapped, the application's body still gives HEAD its
    Content-Length (Apache drops the body), in both modes."""
    g = apache.get('/off_plain')
    h = apache.request('HEAD', '/off_plain')
    assert h.header('Content-Length') == g.header('Content-Length') == str(len(g.body))


# Bad values: see BAD in test_config.py.


def test_good_values_are_accepted_everywhere(start_apache):
    conf = '''
WSGIMapHEADToGET auto
WSGIEnableSendfile off
<VirtualHost 127.0.0.1:@PORT@>
    ServerName v.test
    WSGIMapHEADToGET Off
    WSGIEnableSendfile On
</VirtualHost>
<Directory @APPS@>
    WSGIMapHEADToGET ON
    WSGIEnableSendfile ON
</Directory>
WSGIScriptAlias /h @APPS@/head.wsgi
'''
    a = start_apache(conf, name='headgood')
    r = a.request('HEAD', '/h')
    assert r.status == 200 and r.header('X-Method') == 'GET'  # <Directory> On wins
    a.stop()


# --- WSGIEnableSendfile: strace the Apache children for sendfile calls.

SENDFILE_CONF = 'SendBufferSize 16384\n' + mounts('sendfile.wsgi', {
    'sf_default': [],
    'sf_on': ['WSGIEnableSendfile On'],
    'sf_off': ['WSGIEnableSendfile Off', 'EnableSendfile On'],
    'sf_core_off': ['WSGIEnableSendfile On', 'EnableSendfile Off'],
    'sf_core_on': ['EnableSendfile On'],
}) + mounts('head.wsgi', {
    'flag_default': [],
    'flag_on': ['WSGIEnableSendfile On'],
})

BIG = os.urandom(1 << 20)


@pytest.fixture(scope='module', params=MODES)
def sendfile_apache(request, start_apache):
    a = start_apache(in_mode(SENDFILE_CONF, request.param), mpm='event', name='headsendfile')
    a.mode = request.param
    path = os.path.join(a.apps, 'big.bin')
    with open(path, 'wb') as f:
        f.write(BIG)
    os.chmod(path, 0o644)
    yield a
    a.stop()


def traced(a, path):
    """Serves path while strace watches every child of the Apache parent
    (its workers and, in daemon mode, the daemon processes) for sendfile."""
    if not shutil.which('strace'):
        pytest.skip('strace is not installed')
    assert a.get(path).body == BIG  # warm: the script is loaded
    return a.traced(path, 'sendfile,sendfile64')


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason='strace -p needs root')

SENDFILE_USED = [
    ('/sf_on/big.bin', True),        # WSGIEnableSendfile On, EnableSendfile unset
    ('/sf_default/big.bin', False),  # default Off, as mod_wsgi
    ('/sf_off/big.bin', False),      # Off wins over Apache's EnableSendfile On
    ('/sf_core_on/big.bin', False),  # EnableSendfile On alone does not enable it
    ('/sf_core_off/big.bin', False),  # an explicit EnableSendfile Off is honoured
]


@ROOT_ONLY
@pytest.mark.parametrize('path,used', SENDFILE_USED)
def test_sendfile_follows_wsgi_enable_sendfile(sendfile_apache, path, used):
    r, trace = traced(sendfile_apache, path)
    assert r.status == 200 and r.body == BIG
    assert ('sendfile(' in trace) == used, (sendfile_apache.mode, trace[-2000:])


def test_environ_hides_the_setting(sendfile_apache):
    # mod_wsgi 6 carries it as mod_wsgi.x-enable_sendfile, kept out of the environ.
    assert sendfile_apache.get('/flag_default').header('X-Sendfile-Flag') == '?'
    assert sendfile_apache.get('/flag_on').header('X-Sendfile-Flag') == '?'

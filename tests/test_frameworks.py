"""Real frameworks served by the module: Flask 2.2 and Django 3.2 (Debian's)."""
import hashlib
import http.cookiejar
import json
import os
import pwd
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import SETUPS, in_mode


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None


class Client:
    """A browser-ish client: cookie jar, redirects not followed."""

    def __init__(self, port):
        self.base = 'http://127.0.0.1:%d' % port
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def open(self, path, data=None, headers=None):
        if isinstance(data, dict):
            data = urllib.parse.urlencode(data, doseq=True).encode()
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(req, timeout=20) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def cookie(self, name):
        return next((c.value for c in self.jar if c.name == name), None)


@pytest.fixture(scope='module', params=SETUPS)
def flask(request, start_apache):
    mpm, mode = request.param
    a = start_apache(in_mode('WSGIScriptAlias /flask @APPS@/flask_app/app.wsgi\n', mode), mpm=mpm, name='flask')
    a.mode = mode
    yield a
    a.stop()


def fjson(client, path, data=None, headers=None):
    status, _, body = client.open(path, data, headers)
    assert status == 200, body
    return json.loads(body)


def test_flask_urls_know_the_mount_point(flask):
    c = Client(flask.port)
    e = fjson(c, '/flask/')
    assert e['script_root'] == '/flask'
    assert e['items'] == '/flask/items/7'
    assert e['absolute'] == 'http://127.0.0.1:%d/flask/items/7' % flask.port
    assert e['url'] == 'http://127.0.0.1:%d/flask/' % flask.port
    assert e['host'] == '127.0.0.1:%d' % flask.port
    assert fjson(c, '/flask/items/3?q=caf%C3%A9&tag=a&tag=b') == {'id': 3, 'q': 'café', 'tags': ['a', 'b']}


def test_flask_json_and_form_posts(flask):
    c = Client(flask.port)
    got = fjson(c, '/flask/json', json.dumps({'numbers': [1, 2, 3]}).encode(), {'Content-Type': 'application/json'})
    assert got == {'got': {'numbers': [1, 2, 3]}, 'doubled': [2, 4, 6]}
    assert fjson(c, '/flask/form', {'name': 'Zoë', 'colour': ['red', 'blue']}) == {
        'name': 'Zoë', 'colours': ['red', 'blue']}


def test_flask_file_upload_is_byte_exact(flask):
    data = os.urandom(200 * 1024)
    boundary = 'xXxBoundaryxXx'
    body = (('--%s\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
             '--%s\r\nContent-Disposition: form-data; name="file"; filename="blob.bin"\r\n'
             'Content-Type: application/octet-stream\r\n\r\n' % (boundary, boundary)).encode()
            + data + ('\r\n--%s--\r\n' % boundary).encode())
    got = fjson(Client(flask.port), '/flask/upload', body,
                {'Content-Type': 'multipart/form-data; boundary=' + boundary})
    assert got == {'filename': 'blob.bin', 'size': len(data), 'sha256': hashlib.sha256(data).hexdigest(),
                   'note': 'hello'}


def test_flask_session_redirect_404_and_streaming(flask):
    c = Client(flask.port)
    assert c.open('/flask/session/get')[2] == b'nothing'
    assert c.open('/flask/session/set/blue')[2] == b'stored'
    assert c.cookie('session')
    assert c.open('/flask/session/get')[2] == b'blue'
    assert Client(flask.port).open('/flask/session/get')[2] == b'nothing'

    status, headers, _ = c.open('/flask/go')
    assert status == 302 and headers['Location'] in ('/flask/items/42', 'http://127.0.0.1:%d/flask/items/42' % flask.port)

    status, _, body = c.open('/flask/missing')
    assert status == 404 and json.loads(body) == {'error': 'not found', 'path': '/missing'}
    assert c.open('/flask/no/such/route')[0] == 404

    status, headers, body = c.open('/flask/stream?n=500&tag=t')
    # Streamed (chunked) in embedded mode; in daemon mode the blocks that reach
    # the Apache child within response-flush-delay go out together, here all.
    assert status == 200 and ('Content-Length' not in headers or flask.mode == 'daemon')
    lines = body.decode().splitlines()
    assert len(lines) == 500 and lines[0] == 'line 0 t' and lines[-1] == 'line 499 t'


@pytest.fixture(scope='module', params=SETUPS)
def django(request, start_apache):
    mpm, mode = request.param
    conf = ('WSGIScriptAlias /django @APPS@/django_site/notesite/wsgi.py\n'
            'Alias /static/admin/ %s/\n<Directory %s>\nRequire all granted\n</Directory>\n'
            % ((DJANGO_ADMIN_STATIC,) * 2))
    a = start_apache(in_mode(conf, mode), mpm=mpm, name='django')
    site = os.path.join(a.apps, 'django_site')
    db = os.path.join(site, 'db')
    os.makedirs(db)
    manage = [sys.executable if sys.executable.startswith('/usr/') else '/usr/bin/python3',
              os.path.join(site, 'manage.py')]
    env = dict(os.environ, DJANGO_SUPERUSER_PASSWORD='s3cret-Pass')
    subprocess.run(manage + ['migrate', '-v0'], check=True, env=env)
    subprocess.run(manage + ['createsuperuser', '--noinput', '--username', 'admin', '--email', 'admin@example.com'],
                   check=True, env=env, capture_output=True)
    if os.geteuid() == 0:
        www = pwd.getpwnam('www-data')
        for p in [db] + [os.path.join(db, f) for f in os.listdir(db)]:
            os.chown(p, www.pw_uid, www.pw_gid)
    yield a
    a.stop()


def _admin_static():
    import django
    return os.path.join(os.path.dirname(django.__file__), 'contrib', 'admin', 'static', 'admin')


DJANGO_ADMIN_STATIC = _admin_static()


def csrf_token(page):
    return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()


def test_django_admin_login_create_and_list(django):
    c = Client(django.port)
    status, headers, _ = c.open('/django/admin/')
    assert status == 302 and headers['Location'] == '/django/admin/login/?next=/django/admin/'

    status, _, page = c.open('/django/admin/login/?next=/django/admin/')
    assert status == 200 and b'action="/django/admin/login/?next=/django/admin/"' in page
    token = csrf_token(page)
    assert c.cookie('csrftoken')

    # Without the CSRF token: refused.
    status, _, _ = c.open('/django/admin/login/', {'username': 'admin', 'password': 's3cret-Pass'})
    assert status == 403

    status, headers, _ = c.open('/django/admin/login/?next=/django/admin/', {
        'csrfmiddlewaretoken': token, 'username': 'admin', 'password': 's3cret-Pass', 'next': '/django/admin/'})
    assert status == 302 and headers['Location'] == '/django/admin/', headers
    assert c.cookie('sessionid')

    status, _, page = c.open('/django/admin/notes/note/add/')
    assert status == 200
    status, headers, _ = c.open('/django/admin/notes/note/add/', {
        'csrfmiddlewaretoken': csrf_token(page), 'title': 'Café note ✓', 'body': 'written via admin', '_save': 'Save'})
    assert status == 302 and headers['Location'] == '/django/admin/notes/note/', headers

    status, _, page = c.open('/django/admin/notes/note/')
    assert status == 200 and 'Café note ✓'.encode() in page

    status, _, body = c.open('/django/notes/')
    got = json.loads(body)
    assert status == 200 and {'title': 'Café note ✓', 'body': 'written via admin'} in got['notes']
    assert got['self'] == '/django/notes/' and got['admin'] == '/django/admin/'

    status, _, css = c.open('/static/admin/css/base.css')
    assert status == 200 and b'body' in css

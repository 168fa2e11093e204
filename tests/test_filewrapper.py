"""wsgi.file_wrapper: file buckets for real files, iteration otherwise."""
import os

import pytest

from conftest import server_fixture

apache = server_fixture('WSGIScriptAlias /fw @APPS@/filewrapper.wsgi\n')

DATA = bytes((i * 7 + i // 256) % 256 for i in range(100000))


@pytest.fixture(autouse=True)
def data_file(apache):
    path = os.path.join(apache.apps, 'data.bin')
    if not os.path.exists(path):
        with open(path, 'wb') as f:
            f.write(DATA)


def test_whole_file(apache):
    r = apache.get('/fw/full')
    assert r.status == 200 and r.body == DATA
    assert r.header('Content-Length') == str(len(DATA))


def test_from_current_position(apache):
    assert apache.get('/fw/seek?1000').body == DATA[1000:]
    assert apache.get('/fw/buffered').body == DATA[10:]


def test_content_length_limits_the_range(apache):
    r = apache.get('/fw/length?500')
    assert r.body == DATA[:500] and r.header('Content-Length') == '500'


def test_file_like_without_fileno_is_iterated(apache):
    assert apache.get('/fw/bytesio').body == b'from a BytesIO ' * 1000


def test_head(apache):
    r = apache.request('HEAD', '/fw/full')
    assert r.status == 200 and r.body == b''

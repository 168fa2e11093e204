"""The objects an application can inspect, as mod_wsgi 6.0.5 makes them:
mod_wsgi.Input, wsgi.errors (an io.TextIOWrapper over a mod_wsgi.Log),
mod_wsgi.FileWrapper and mod_wsgi.LogHandler; embedded and daemon mode.
The expected values were compared with mod_wsgi 6.0.5 running the same
application (tests/apps/objtypes.wsgi)."""
import json
import re

import pytest

from conftest import in_mode, server_fixture

CONF = 'WSGIScriptAlias /o @APPS@/objtypes.wsgi\n'

# Under prefork a kept object could be in another child: event only.
apache = server_fixture(CONF, mpms=['event'])

INPUT_DIR = ['close', 'read', 'readline', 'readlines']
LOG_DIR = ['close', 'closed', 'encoding', 'errors', 'fileno', 'flush', 'isatty', 'name',
           'readable', 'seekable', 'writable', 'write', 'writelines']


def get_json(apache, path):
    r = apache.get('/o' + path)
    assert r.status == 200, r.body
    return json.loads(r.body)


def lines_with(apache, text, since=0):
    return [l for l in apache.error_log()[since:].splitlines() if text in l]


def test_type_names_and_modules(apache):
    t = get_json(apache, '/types')
    assert t['input']['name'] == 'Input' and t['input']['module'] == 'mod_wsgi'
    assert t['input']['dir'] == INPUT_DIR
    assert t['errors']['name'] == 'TextIOWrapper' and t['errors']['module'] == '_io'
    assert t['errors_is_textiowrapper']
    assert t['errors_attrs'] == ['utf-8', 'replace', True, True, '<wsgi.errors>', False]
    assert t['buffer']['name'] == 'Log' and t['buffer']['module'] == 'mod_wsgi'
    assert t['buffer']['dir'] == LOG_DIR
    assert t['buffer_attrs'] == ['<wsgi.errors>', False, False, True, False, False,
                                 'OSError: wsgi.errors log object has no file descriptor']
    assert t['file_wrapper']['name'] == 'FileWrapper'
    assert t['file_wrapper']['module'] == 'mod_wsgi'
    assert t['file_wrapper']['dir'] == ['blksize', 'close', 'filelike']
    assert t['file_wrapper_attrs'] == [4096, 'data'] and t['FileWrapper_is']
    assert t['LogHandler'] == ['mod_wsgi', 'LogHandler', True, 0]
    assert t['stderr']['name'] == 'TextIOWrapper'
    assert t['stderr_name'] == ['<stderr>', '<stdout>', '<stderr>']


def test_buffer_takes_bytes_bytearray_and_memoryview(apache):
    mark = len(apache.error_log())
    assert get_json(apache, '/writes') == 'ok'
    assert apache.wait_for_log('OBJ unterminated at the end')
    got = [l.split('] ', 4)[-1] for l in lines_with(apache, 'OBJ ', mark)]
    assert got == ['OBJ bytes line', 'OBJ bytearray line', 'OBJ memoryview line',
                   'OBJ two in one', 'OBJ str line', 'OBJ writelines a', 'OBJ writelines b',
                   'OBJ buffer writelines', 'OBJ partial joined', 'OBJ print to errors',
                   # mod_wsgi closes wsgi.errors at the end: a last partial line is logged
                   'OBJ unterminated at the end']
    for line in lines_with(apache, 'OBJ ', mark):
        assert ':error] ' in line and (('[client 127.0.0.1:' in line)
                                       or ('[remote 127.0.0.1:' in line))


def test_wrong_types_raise_type_error(apache):
    assert get_json(apache, '/wrong-types') == {
        'text_bytes': 'TypeError: write() argument must be str, not bytes',
        'text_int': 'TypeError: write() argument must be str, not int',
        'buffer_int': "TypeError: a bytes-like object is required, not 'int'",
        'buffer_writelines_int':
            'TypeError: writelines() argument must be an iterable of bytes-like objects',
        'buffer_writelines_items': "TypeError: a bytes-like object is required, not 'int'",
    }


def test_wsgi_errors_after_its_request_raises_and_the_process_serves_on(apache):
    assert get_json(apache, '/keep') == 'ok'
    assert get_json(apache, '/use-kept') == {
        'write': 'RuntimeError: write() called on wsgi.errors after request completed',
        'buffer_write': 'RuntimeError: write() called on wsgi.errors after request completed',
        'flush': 'ok',
        'writelines':
            'RuntimeError: writelines() called on wsgi.errors after request completed',
        'close': 'ok',
        'closed': False,
    }
    assert 'OBJ too late' not in apache.error_log()
    assert get_json(apache, '/types')['input']['name'] == 'Input'
    assert 'Segmentation fault' not in apache.error_log()


def test_a_changed_wsgi_errors_is_not_handed_to_a_later_request(apache):
    """A thread hands out its previous request's wsgi.errors again only
    when nothing can tell; one the application reconfigured is dropped."""
    mark = len(apache.error_log())
    for i in range(12):
        assert get_json(apache, '/reconfigure') == 'ok'
        assert get_json(apache, '/line?%d' % i) == 'ok'
    assert apache.wait_for_log('OBJ line 11')
    got = [l.split('] ', 4)[-1] for l in lines_with(apache, 'OBJ line', mark)]
    assert got == ['OBJ line %d' % i for i in range(12)]


LEVELS = [('crit', 'OBJ-LOG critical'), ('error', 'OBJ-LOG error'), ('warn', 'OBJ-LOG warning'),
          ('info', 'OBJ-LOG info'), ('info', 'OBJ-LOG level 25'),
          ('warn', 'OBJ-LOG first'), ('warn', 'OBJ-LOG second')]


def logged_levels(apache, since):
    out = []
    for line in lines_with(apache, 'OBJ-LOG', since):
        m = re.search(r'\[wsgi_rs:(\w+)\].*?(OBJ-LOG .*)$', line)
        out.append((m.group(1), m.group(2)))
    return out


def test_log_handler_maps_python_levels_to_apache_levels(apache):
    mark = len(apache.error_log())
    assert get_json(apache, '/log-levels') == 'ok'
    assert apache.wait_for_log('OBJ-LOG from a thread')
    # LogLevel info: debug (and level 5, below INFO) are dropped by Apache.
    # (In daemon mode the request's lines pass through the Apache child, so
    # the thread's own line may come first.)
    got = logged_levels(apache, mark)
    assert [g for g in got if 'thread' not in g[1]] == LEVELS
    assert ('error', 'OBJ-LOG from a thread') in got
    lines = lines_with(apache, 'OBJ-LOG', mark)
    assert all('127.0.0.1:' in l for l in lines if 'thread' not in l)
    # A thread of the application's own: no request decoration.
    assert not any('127.0.0.1:' in l for l in lines if 'thread' in l)


@pytest.mark.parametrize('mode', ['embedded', 'daemon'])
def test_log_handler_debug_and_caller_site(start_apache, mode):
    """With LogLevel debug the DEBUG records appear too, and %F shows the
    application's file and line, as mod_wsgi 6 passes them to Apache."""
    a = start_apache(in_mode('LogLevel debug\nErrorLogFormat "[%l] %F %M"\n' + CONF, mode),
                     name='objtypes-debug')
    assert get_json(a, '/log-levels') == 'ok'
    assert a.wait_for_log('OBJ-LOG from a thread')
    lines = lines_with(a, 'OBJ-LOG')
    got = [(l.split(']', 1)[0][1:], l.rsplit(' OBJ-LOG ', 1)[1]) for l in lines]
    assert [g for g in got if g[1] != 'from a thread'] == [
        ('crit', 'critical'), ('error', 'error'), ('warn', 'warning'), ('info', 'info'),
        ('debug', 'debug'), ('info', 'level 25'), ('debug', 'level 5'), ('warn', 'first'),
        ('warn', 'second')]
    assert ('error', 'from a thread') in got
    assert all(re.search(r'\] objtypes\.wsgi\(\d+\) ', l) for l in lines), lines
    # wsgi.errors lines keep the module's own site.
    assert get_json(a, '/writes') == 'ok'
    assert a.wait_for_log('OBJ bytes line')
    assert 'objtypes.wsgi(' not in lines_with(a, 'OBJ bytes line')[0]

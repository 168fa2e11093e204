"""WSGIHandlerScript, WSGIDispatchScript and WSGIPassApacheRequest, in the
real Apache (the configurations define their own daemon groups)."""
import json
import os

import pytest

from harness import Apache
from conftest import server_fixture

HANDLER_CONF = r"""
WSGIDaemonProcess hd processes=1 threads=4
WSGIHandlerScript wsgi-handler @APPS@/handler.py
WSGIHandlerScript global-handler @APPS@/handler.py application-group=%{GLOBAL}
WSGIHandlerScript daemon-handler @APPS@/handler.py process-group=hd application-group=%{GLOBAL} pass-authorization=On
<Location /sethandler>
    SetHandler wsgi-handler
</Location>
Alias /res @APPS@/handler_res
<Directory @APPS@/handler_res>
    AddHandler global-handler .txt
</Directory>
Alias /dres @APPS@/handler_res
<Location /dres>
    SetHandler daemon-handler
</Location>
RewriteEngine On
RewriteRule ^/rewritten(/.*)?$ - [H=wsgi-handler]
<Location /unknown>
    SetHandler no-such-handler
</Location>
"""

handler_server = server_fixture(HANDLER_CONF, mpms=['event', 'prefork'], modes=['embedded'])


def get_json(server, path, status=200, **kw):
    r = server.get(path, **kw)
    assert r.status == status, (r, server.error_log()[-3000:])
    return json.loads(r.body) if status == 200 else r


def test_sethandler_runs_handle_request_embedded(handler_server):
    a = handler_server
    e = get_json(a, '/sethandler/a/b')
    assert e['mod_wsgi.callable_object'] == 'handle_request'
    assert e['mod_wsgi.request_handler'] == 'wsgi-handler'
    assert e['mod_wsgi.handler_script'] == os.path.join(a.apps, 'handler.py')
    assert e['mod_wsgi.process_group'] == ''
    # The resource is r->filename (need not exist), not the handler script.
    assert e['SCRIPT_FILENAME'] == os.path.join(a.dir, 'sethandler')
    assert (e['SCRIPT_NAME'], e['PATH_INFO']) == ('/sethandler', '/a/b')
    # WSGIApplicationGroup's default, %{RESOURCE}.
    assert e['mod_wsgi.application_group'] == '127.0.0.1:%d|/sethandler' % a.port


def test_addhandler_by_extension(handler_server):
    a = handler_server
    e = get_json(a, '/res/page.txt')
    assert e['SCRIPT_FILENAME'] == os.path.join(a.apps, 'handler_res', 'page.txt')
    assert (e['SCRIPT_NAME'], e['PATH_INFO']) == ('/res/page.txt', '')
    assert e['mod_wsgi.request_handler'] == 'global-handler'
    assert e['mod_wsgi.application_group'] == ''


def test_rewrite_rule_handler_flag(handler_server):
    e = get_json(handler_server, '/rewritten/x')
    assert e['mod_wsgi.request_handler'] == 'wsgi-handler'
    assert e['mod_wsgi.callable_object'] == 'handle_request'


def test_unknown_handler_name_is_not_ours(handler_server):
    r = handler_server.get('/unknown')
    assert r.status == 404, r
    assert b'handle_request' not in r.body


def test_daemon_handler_script(handler_server):
    a = handler_server
    e = get_json(a, '/dres/page.txt', headers={'Authorization': 'Basic eDp5'})
    assert e['mod_wsgi.process_group'] == 'hd'
    assert e['mod_wsgi.application_group'] == ''
    assert e['mod_wsgi.handler_script'] == os.path.join(a.apps, 'handler.py')
    assert e['SCRIPT_FILENAME'] == os.path.join(a.apps, 'handler_res', 'page.txt')
    assert e['auth'] == 'Basic eDp5'  # pass-authorization=On
    assert e['pid'] != get_json(a, '/sethandler')['pid']
    assert get_json(a, '/sethandler', headers={'Authorization': 'Basic eDp5'})['auth'] is None


def test_reload_required_embedded(handler_server):
    a = handler_server
    for _ in range(3):
        get_json(a, '/res/page.txt')
    e = get_json(a, '/res/reload.txt')
    # Either this process had the module loaded (reload_required True: the
    # module was executed again, for this resource) or it loaded it now.
    assert e['loaded_after'] in (None, os.path.join(a.apps, 'handler_res', 'reload.txt'))
    if a.mpm == 'event':  # one child: the module was loaded already
        assert e['loaded_after'] == os.path.join(a.apps, 'handler_res', 'reload.txt')
        assert "Reloading Python script file '%s'" % os.path.join(a.apps, 'handler.py') in a.error_log()
        # reload_required False keeps the module.
        assert get_json(a, '/res/page.txt')['loaded_after'] == e['loaded_after']


def test_reload_required_exception_is_logged_and_does_not_reload(handler_server):
    a = handler_server
    get_json(a, '/res/page.txt')
    e = get_json(a, '/res/raise.txt')
    assert e['SCRIPT_FILENAME'].endswith('raise.txt')
    a.wait_for_log('reload_required failed on purpose')
    assert 'Traceback' in a.error_log()


def test_reload_required_restarts_the_daemon(handler_server):
    a = handler_server
    first = get_json(a, '/dres/page.txt')['pid']
    assert get_json(a, '/dres/page.txt')['pid'] == first
    again = get_json(a, '/dres/reload.txt')
    assert again['pid'] != first
    assert again['loaded_after'] is None  # a fresh process loaded it
    a.wait_for_log("Forcing restart of daemon process 'hd'")
    assert get_json(a, '/dres/page.txt')['pid'] == again['pid']


DISPATCH_CONF = r"""
WSGIDaemonProcess d1 processes=1 threads=2
WSGIDaemonProcess d2 processes=1 threads=2
WSGIDispatchScript @APPS@/dispatch.py
WSGIScriptAlias /dispatch @APPS@/dispatched.wsgi
<Location /dispatch/restricted>
    WSGIRestrictProcess d1
</Location>
<Location /dispatch/configured>
    WSGIProcessGroup d2
    WSGIApplicationGroup conf-group
    WSGICallableObject other
</Location>
"""

dispatch_server = server_fixture(DISPATCH_CONF, mpms=['event'], modes=['embedded'])


def test_dispatch_none_keeps_the_configuration(dispatch_server):
    a = dispatch_server
    e = get_json(a, '/dispatch/plain')
    assert e['process_group'] == ''
    assert e['application_group'] == '127.0.0.1:%d|/dispatch' % a.port
    assert e['callable'] == 'application'
    e = get_json(a, '/dispatch/configured')
    assert (e['process_group'], e['application_group'], e['callable']) == ('d2', 'conf-group', 'other')


def test_dispatch_chooses_process_group(dispatch_server):
    a = dispatch_server
    d1 = get_json(a, '/dispatch/x?pg=d1')
    d2 = get_json(a, '/dispatch/x?pg=d2&bytes=1')
    assert (d1['process_group'], d2['process_group']) == ('d1', 'd2')
    embedded = get_json(a, '/dispatch/x')
    assert len({d1['pid'], d2['pid'], embedded['pid']}) == 3
    # %{GLOBAL}: embedded, even where the configuration says d2.
    e = get_json(a, '/dispatch/configured?pg=%25%7BGLOBAL%7D')
    assert e['process_group'] == '' and e['pid'] == embedded['pid']


def test_dispatch_chooses_application_group_and_callable(dispatch_server):
    a = dispatch_server
    one = get_json(a, '/dispatch/x?ag=one')
    two = get_json(a, '/dispatch/x?ag=two&call=other')
    assert (one['application_group'], one['callable']) == ('one', 'application')
    assert (two['application_group'], two['callable']) == ('two', 'other')
    assert two['callable_object'] == 'other'
    g = get_json(a, '/dispatch/x?ag=%25%7BGLOBAL%7D&pg=d1')
    assert (g['application_group'], g['process_group']) == ('', 'd1')


def test_dispatch_environ(dispatch_server):
    a = dispatch_server
    get_json(a, '/dispatch/x?env=1', headers={'X-Dispatch': 'yes'})
    a.wait_for_log('dispatch environ:')
    line = [l for l in a.error_log().splitlines() if 'dispatch environ:' in l][-1]
    seen = json.loads(line.split('dispatch environ: ', 1)[1])
    assert seen['mod_wsgi.process_group'] == ''
    assert seen['mod_wsgi.application_group'] == ''  # the script's group, %{GLOBAL}
    assert seen['HTTP_X_DISPATCH'] == 'yes'
    assert seen['REQUEST_URI'] == '/dispatch/x?env=1'
    assert seen['SCRIPT_NAME'] == '/dispatch'
    assert not seen['has_callable_object'] and not seen['has_input']
    assert seen['mod_wsgi.version'] and len(seen['apache.version']) == 3
    assert seen['request_rec'] == 'None'  # WSGIPassApacheRequest Off


def test_dispatch_script_reloading_and_request_rec(start_apache):
    a = start_apache('WSGIPassApacheRequest On\n'
                     'WSGIDispatchScript @DIR@/dispatch.py\n'
                     'WSGIScriptAlias /dispatch @APPS@/dispatched.wsgi\n', name='dispatch-reload')
    script = os.path.join(a.dir, 'dispatch.py')
    with open(os.path.join(a.apps, 'dispatch.py')) as f:
        source = f.read()
    with open(script, 'w') as f:
        f.write(source)
    e = get_json(a, '/dispatch/x?env=1&call=other')
    assert e['callable'] == 'other' and e['request_rec']
    a.wait_for_log('dispatch environ:')
    line = [l for l in a.error_log().splitlines() if 'dispatch environ:' in l][-1]
    assert json.loads(line.split('dispatch environ: ', 1)[1])['request_rec'].startswith('<capsule object NULL')
    with open(script, 'w') as f:
        f.write('def callable_object(environ):\n    return "other"\n')
    st = os.stat(script)
    os.utime(script, (st.st_atime, st.st_mtime + 5))
    assert get_json(a, '/dispatch/x')['callable'] == 'other'  # the changed script
    a.wait_for_log("Reloading Python script file '%s'" % script)


def test_dispatch_exception_is_500_with_traceback(dispatch_server):
    a = dispatch_server
    r = a.get('/dispatch/x?raise=1')
    assert r.status == 500
    a.wait_for_log('dispatch failed on purpose')
    log = a.error_log()
    assert "Exception occurred processing WSGI script '%s'" % os.path.join(a.apps, 'dispatch.py') in log
    assert 'Traceback' in log


def test_dispatch_bad_values_are_500(dispatch_server):
    a = dispatch_server
    assert a.get('/dispatch/x?badtype=1').status == 500
    a.wait_for_log('TypeError')
    assert a.get('/dispatch/x?ag=%25%7BBOGUS%7D').status == 500
    a.wait_for_log("returned an invalid application group")
    assert a.get('/dispatch/x?pg=nosuch').status == 500
    a.wait_for_log("No WSGI daemon process called 'nosuch'")


def test_dispatch_choice_must_pass_restrict_process(dispatch_server):
    a = dispatch_server
    assert get_json(a, '/dispatch/restricted?pg=d1')['process_group'] == 'd1'
    assert a.get('/dispatch/restricted?pg=d2').status == 500
    a.wait_for_log("WSGI0149: Daemon process called 'd2' cannot be accessed by this WSGI application as not a member of allowed groups.")


def test_dispatch_runs_with_restrict_embedded(start_apache):
    a = start_apache('WSGIRestrictEmbedded On\n'
                     'WSGIDaemonProcess d1 processes=1 threads=2\n'
                     'WSGIDispatchScript @APPS@/dispatch.py\n'
                     'WSGIScriptAlias /dispatch @APPS@/dispatched.wsgi\n', name='dispatch-restricted')
    assert get_json(a, '/dispatch/x?pg=d1')['process_group'] == 'd1'
    assert a.get('/dispatch/x').status == 500
    a.wait_for_log('Embedded mode of mod_wsgi disabled by runtime configuration')


PASS_CONF = r"""
WSGIDaemonProcess pd processes=1 threads=2
WSGIPassApacheRequest On
WSGIScriptAlias /on @APPS@/request_rec.wsgi
WSGIScriptAlias /daemon @APPS@/request_rec.wsgi process-group=pd
WSGIScriptAlias /off @APPS@/request_rec.wsgi application-group=off
<Location /off>
    WSGIPassApacheRequest Off
</Location>
"""

pass_server = server_fixture(PASS_CONF, mpms=['event'], modes=['embedded'])


def test_pass_apache_request_embedded(pass_server):
    e = get_json(pass_server, '/on')
    assert e['present'] and e['type'] == 'PyCapsule'
    assert e['repr'].startswith('<capsule object NULL at 0x')  # unnamed, as mod_wsgi's
    # A capsule kept from an earlier request is refused by our functions.
    e = get_json(pass_server, '/on')
    assert e['old_use'].startswith('refused'), e
    assert 'must not be written' not in pass_server.error_log()


def test_pass_apache_request_off_and_daemon(pass_server):
    assert get_json(pass_server, '/off')['present'] is False
    assert get_json(pass_server, '/daemon')['present'] is False


BAD = [
    ('WSGIHandlerScript h', 'Location of handler script not supplied.'),
    ('WSGIHandlerScript h /x.py bogus=1', "Invalid option to WSGI handler script definition: 'bogus'"),
    ('WSGIHandlerScript h /x.py process-group=', "Empty value for option 'process-group'"),
    ('WSGIHandlerScript h /x.py application-group=%{BOGUS}', "Invalid application group '%{BOGUS}'"),
    ('WSGIHandlerScript h /x.py pass-authorization=maybe', 'pass-authorization must be On or Off'),
    ('WSGIDispatchScript', 'Location of dispatch script not supplied.'),
    ('WSGIDispatchScript /x.py process-group=a', "Invalid option to WSGI dispatch script definition: 'process-group'"),
    ('WSGIPassApacheRequest maybe', 'WSGIPassApacheRequest must be On or Off'),
]


@pytest.mark.parametrize('line,message', BAD)
def test_bad_directive_stops_apache(line, message):
    a = Apache(conf=line + '\n', name='badconf')
    try:
        assert a.start(expect_fail=True) != 0
        assert 'Syntax error on line' in a.start_output, a.start_output
        assert message in a.start_output, a.start_output
        assert a.pid() is None
    finally:
        a.stop()
        a.cleanup()


def test_not_allowed_in_htaccess(start_apache):
    a = start_apache('Alias /ht @DIR@/ht\n<Directory @DIR@/ht>\nAllowOverride All\nRequire all granted\n</Directory>\n',
                     name='dispatch-htaccess')
    os.makedirs(os.path.join(a.dir, 'ht'))
    with open(os.path.join(a.dir, 'ht', '.htaccess'), 'w') as f:
        f.write('WSGIPassApacheRequest On\n')
    assert a.get('/ht/').status == 500
    a.wait_for_log('WSGIPassApacheRequest not allowed here')

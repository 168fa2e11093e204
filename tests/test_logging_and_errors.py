"""Output to the error log, broken scripts and broken applications."""
from conftest import server_fixture

CONF = """
WSGIScriptAlias /log @APPS@/logging.wsgi
WSGIScriptAlias /broken @APPS@/broken_import.wsgi
WSGIScriptAlias /nocallable @APPS@/no_callable.wsgi
WSGIScriptAlias /missing @APPS@/does_not_exist.wsgi
WSGIScriptAlias /hello @APPS@/hello.wsgi
WSGIScriptAlias /dirtarget @APPS@
"""

apache = server_fixture(CONF)


def log_lines(apache, text):
    return [l for l in apache.error_log().splitlines() if text in l]


def test_print_stderr_and_wsgi_errors_reach_the_error_log(apache):
    assert apache.get('/log').body == b'logged'
    for text in ['hello from print', 'to stderr', 'via wsgi.errors', 'line one', 'line two',
                 'partial line without newline']:
        assert apache.wait_for_log(text), text
        line = log_lines(apache, text)[-1]
        assert '[client 127.0.0.1:' in line, line  # tagged with the request's client
        assert '[wsgi_rs:error]' in line


def test_script_that_fails_to_import(apache):
    for _ in range(2):  # retried on the next request, same result
        assert apache.get('/broken').status == 500
    log = apache.error_log()
    assert "WSGI0109: Unable to execute Python script file '%s/broken_import.wsgi'." % apache.apps in log
    assert 'ImportError: this script cannot be imported' in log
    assert apache.get('/hello').status == 200


def test_script_without_the_callable(apache):
    assert apache.get('/nocallable').status == 404  # as mod_wsgi answers
    assert apache.wait_for_log("WSGI0089: Target WSGI script '%s/no_callable.wsgi' does not contain WSGI application "
                               "'application'." % apache.apps)


def test_missing_script_is_404(apache):
    assert apache.get('/missing').status == 404
    assert apache.wait_for_log('Target WSGI script not found or unable to stat')


def test_directory_target_is_refused(apache):
    assert apache.get('/dirtarget/').status == 403
    assert apache.wait_for_log('Attempt to invoke directory as WSGI application')


def test_nothing_crashed(apache):
    log = apache.error_log()
    assert 'Segmentation fault' not in log and 'exit signal' not in log

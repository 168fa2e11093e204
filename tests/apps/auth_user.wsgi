"""WSGIAuthUserScript for tests/test_auth.py: Basic (check_password) and
Digest (get_realm_hash) over a fixed user table."""
import hashlib
import os

USERS = {'alice': 'secret', 'bob': 'hunter2', 'carol': 'pw'}


def check_password(environ, user, password):
    # Where it ran, for the daemon-mode tests (read back from the error log).
    environ['wsgi.errors'].write('AUTH-RAN pid=%d group=%r user=%s\n' % (
        os.getpid(), environ['mod_wsgi.application_group'], user))
    if 'HTTP_AUTHORIZATION' in environ or 'HTTP_PROXY_AUTHORIZATION' in environ:
        raise AssertionError('credentials leaked into the auth environ')
    if user == 'boom':
        raise RuntimeError('auth script exploded for %s' % user)
    if user == 'renamed':
        return 'Renamed-User' if password == 'pw' else False
    if user == 'odd':
        return 42  # not a valid answer: a 500
    if user not in USERS:
        return None
    return USERS[user] == password


def get_realm_hash(environ, user, realm):
    if user not in USERS:
        return None
    return hashlib.md5(('%s:%s:%s' % (user, realm, USERS[user])).encode()).hexdigest()

"""WSGIAccessScript for tests/test_auth.py: the X-Access header decides when
present, else the client's host."""
import json
import threading

kept = {}


def allow_access(environ, host):
    how = environ.get('HTTP_X_ACCESS')
    if how is None:
        # /denyhost lets in only a host the tests never connect from.
        wanted = '192.0.2.1' if environ['SCRIPT_NAME'].startswith('/denyhost') else '127.0.0.1'
        return host == wanted
    if how == 'boom':
        raise RuntimeError('access script exploded')
    if how == 'bad':
        return 1  # not a bool: denied
    if how == 'dump':
        out = {'host': host}
        for k, v in environ.items():
            # (No reprs with quotes: the error log escapes them.)
            out[k] = v if type(v) is str else {'type': type(v).__name__}
        out['versions'] = [environ['apache.version'], environ['mod_wsgi.version']]
        ssl = environ['mod_ssl.is_https']
        lookup = environ['mod_ssl.var_lookup']
        out['is_https()'] = ssl()
        out['var_lookup()'] = lookup('SSL_PROTOCOL')
        # From another thread, while the hook runs: allowed.
        seen = []
        t = threading.Thread(target=lambda: seen.append((ssl(), lookup(b'HTTPS'))))
        t.start()
        t.join()
        out['from_thread'] = repr(seen)
        environ['wsgi.errors'].write('AUTH-ENVIRON ' + json.dumps(out, sort_keys=True) + '\n')
        kept.update(errors=environ['wsgi.errors'], ssl=ssl, lookup=lookup)
        return True
    if how == 'stale':
        # Objects kept from an earlier request must refuse, not crash.
        if not kept:  # another child took the earlier request
            environ['wsgi.errors'].write('AUTH-STALE null\n')
            return True
        failures = []
        for name, call in [('errors', lambda: kept['errors'].write('late\n')),
                           ('ssl', lambda: kept['ssl']()),
                           ('lookup', lambda: kept['lookup']('SSL_PROTOCOL'))]:
            try:
                call()
            except RuntimeError as e:
                failures.append('%s: %s' % (name, e))
        for bad in [lambda: kept['lookup'](3), lambda: kept['ssl'].func(object())]:
            try:
                bad()
            except (TypeError, ValueError) as e:
                failures.append('bad arg: %s' % type(e).__name__)
        environ['wsgi.errors'].write('AUTH-STALE %s\n' % json.dumps(failures))
        return True
    return {'allow': True, 'deny': False, 'pass': None}[how]

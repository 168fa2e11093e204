"""Returns the public attributes of the `mod_wsgi` and `apache` modules as JSON."""
import json

import apache
import mod_wsgi


def application(environ, start_response):
    out = {}
    for name, m in (('mod_wsgi', mod_wsgi), ('apache', apache)):
        out[name] = {k: getattr(m, k) for k in ('version', 'maximum_processes', 'threads_per_process',
                                                      'description', 'mpm_name', 'build_date',
                                                      'process_group', 'application_group')
                           if hasattr(m, k)}
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]

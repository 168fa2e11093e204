"""No subscriber: request_data() and active_requests still work; outside a
request request_data() raises RuntimeError."""
import json
import threading

import mod_wsgi

try:
    mod_wsgi.request_data()
    AT_IMPORT = 'no error'
except RuntimeError as e:
    AT_IMPORT = str(e)


def application(environ, start_response):
    data = mod_wsgi.request_data()
    data['x'] = 1
    rid = environ['mod_wsgi.request_id']
    other = []

    def probe():
        try:
            mod_wsgi.request_data()
            other.append('no error')
        except RuntimeError as e:
            other.append(str(e))

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    body = json.dumps({
        'at_import': AT_IMPORT,
        'other_thread': other[0],
        'active': mod_wsgi.active_requests.get(rid) is data,
        'callbacks': len(mod_wsgi.event_callbacks),
    }).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]

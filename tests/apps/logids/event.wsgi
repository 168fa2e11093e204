import mod_wsgi
def cb(name, **kw):
    if name == 'request_started':
        raise LookupError('in callback')
mod_wsgi.subscribe_events(cb)
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']

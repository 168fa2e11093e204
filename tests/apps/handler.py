"""A WSGIHandlerScript (tests/test_dispatch.py): handle_request reports where
it ran; reload_required() asks for a reload for resources named reload.*
and raises for raise.*."""
import json
import os
import sys

# Set by reload_required() just before it answers True: this execution of
# the script is the reload it asked for.
LOADED_AFTER = getattr(sys, '_handler_reload_asked', None)
sys._handler_reload_asked = None


def reload_required(resource):
    name = os.path.basename(resource)
    if name.startswith('raise'):
        raise RuntimeError('reload_required failed on purpose')
    if name.startswith('reload'):
        sys._handler_reload_asked = resource
        return True
    return False


def handle_request(environ, start_response):
    keys = ['SCRIPT_NAME', 'PATH_INFO', 'SCRIPT_FILENAME', 'mod_wsgi.handler_script',
            'mod_wsgi.process_group', 'mod_wsgi.application_group',
            'mod_wsgi.callable_object', 'mod_wsgi.request_handler']
    out = {k: environ.get(k) for k in keys}
    out['pid'] = os.getpid()
    out['loaded_after'] = LOADED_AFTER
    out['auth'] = environ.get('HTTP_AUTHORIZATION')
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]

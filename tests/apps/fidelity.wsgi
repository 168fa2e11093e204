"""start_response() refusals, reported as 'Type: message' bodies, and
mod_wsgi.subscribe_signals() (see test_fidelity.py)."""
import json
import os
import sys
import threading

import mod_wsgi

TEXT = [('Content-Type', 'text/plain')]

# start_response(status, headers) calls that must be refused.
BAD = {
    'status-int': (200, TEXT),
    'status-latin1': ('200 OK\u20ac', TEXT),
    'status-word': ('OK', TEXT),
    'status-four-digits': ('2000 OK', TEXT),
    'status-no-space': ('200OK', TEXT),
    'status-crlf': ('200 OK\r\nX-Injected: yes', TEXT),
    'headers-tuple': ('200 OK', (('X-A', 'b'),)),
    'headers-dict': ('200 OK', {'X-A': 'b'}),
    'header-list': ('200 OK', [['X-A', 'b']]),
    'header-triple': ('200 OK', [('X-A', 'b', 'c')]),
    'name-bytes': ('200 OK', [(b'X-A', 'b')]),
    'value-int': ('200 OK', [('X-A', 1)]),
    'name-empty': ('200 OK', [('', 'b')]),
    'name-crlf': ('200 OK', [('X-A\r\n', 'b')]),
    'name-space': ('200 OK', [('X A', 'b')]),
    'value-crlf': ('200 OK', [('X-A', 'a\r\nX-Injected: yes')]),
    'value-latin1': ('200 OK', [('X-A', 'caf\u20ac')]),
    'name-latin1': ('200 OK', [('X-\u20ac', 'b')]),
}

kept = {}
signals = []
signal_events = []


def on_event(name, **kw):
    if name == 'process_signal':
        signal_events.append(dict(kw))
        return {'seen_by_events': True}


mod_wsgi.subscribe_events(on_event)


def on_signal(name, **kw):
    signals.append({'name': name, 'kw': kw,
                    'request_thread': getattr(threading.current_thread(), 'serving', False)})


registered = mod_wsgi.subscribe_signals(on_signal)


def refused(call):
    try:
        call()
    except BaseException as e:
        return '%s: %s' % (type(e).__name__, e)
    return 'accepted'


def application(environ, start_response):
    threading.current_thread().serving = True
    op = environ['PATH_INFO'].lstrip('/')
    if op in BAD:
        status, headers = BAD[op]
        body = refused(lambda: start_response(status, headers))
    elif op == 'exc-info-str':
        body = refused(lambda: start_response('200 OK', TEXT, 'not a tuple'))
    elif op == 'twice-after-output':
        write = start_response('200 OK', TEXT)
        write(b'[')
        return [(refused(lambda: start_response('200 OK', TEXT)) + ']').encode()]
    elif op == 'exc-info-pair-after-output':
        write = start_response('200 OK', TEXT)
        write(b'[')
        pair = (ValueError, ValueError('x'))
        return [(refused(lambda: start_response('500 Error', TEXT, pair)) + ']').encode()]
    elif op == 'content-length':
        # Accepted by start_response(); refused when output starts.
        write = start_response('200 OK', [('Content-Length', 'twelve')])
        try:
            write(b'x')
            body = 'accepted'
        except ValueError as e:
            start_response('200 OK', TEXT, sys.exc_info())
            return [('%s: %s' % (type(e).__name__, e)).encode()]
    elif op == 'content-length-returned':
        start_response('200 OK', [('Content-Length', '-1')])
        return [b'never']
    elif op == 'write-str':
        write = start_response('200 OK', TEXT)
        return [refused(lambda: write('text')).encode()]
    elif op == 'keep':
        kept['start_response'] = start_response
        kept['write'] = start_response('200 OK', TEXT)
        return [b'kept']
    elif op == 'use-kept':
        body = '%s\n%s' % (refused(lambda: kept['start_response']('200 OK', TEXT)),
                           refused(lambda: kept['write'](b'late')))
    elif op == 'no-start-response':
        return [b'no headers']
    elif op == 'str-item':
        start_response('200 OK', TEXT)
        return ['not bytes']
    elif op == 'signals':
        body = json.dumps({
            'pid': os.getpid(), 'process_group': mod_wsgi.process_group,
            'registered': registered is on_signal,
            'callbacks': len(mod_wsgi.signal_callbacks),
            'signals': signals, 'events': signal_events})
    else:
        body = 'unknown'
    start_response('200 OK', TEXT)
    return [body.encode()]

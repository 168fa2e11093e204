"""The object types an application sees (wsgi.input, wsgi.errors and its
buffer, wsgi.file_wrapper, mod_wsgi.LogHandler); also run on mod_wsgi 6."""
import io
import json
import logging
import sys
import threading

import mod_wsgi

kept = {}

logger = logging.getLogger('objtypes')
logger.setLevel(1)
if not logger.handlers:
    logger.addHandler(mod_wsgi.LogHandler())
    logger.propagate = False


def public(obj):
    return sorted(n for n in dir(obj) if not n.startswith('_'))


def describe(obj):
    t = type(obj)
    return {'name': t.__name__, 'module': t.__module__, 'dir': public(obj)}


def attempt(f):
    try:
        f()
        return 'ok'
    except Exception as e:
        return '%s: %s' % (type(e).__name__, e)


def types(environ):
    errors = environ['wsgi.errors']
    wrapper = environ['wsgi.file_wrapper'](io.BytesIO(b'data'), 4096)
    return {
        'input': describe(environ['wsgi.input']),
        'errors': describe(errors),
        'errors_is_textiowrapper': isinstance(errors, io.TextIOWrapper),
        'errors_attrs': [errors.encoding, errors.errors, errors.line_buffering,
                         errors.write_through, errors.name, errors.closed],
        'buffer': describe(errors.buffer),
        'buffer_attrs': [errors.buffer.name, errors.buffer.closed, errors.buffer.readable(),
                         errors.buffer.writable(), errors.buffer.seekable(),
                         errors.buffer.isatty(), attempt(errors.buffer.fileno)],
        'file_wrapper': describe(wrapper),
        'file_wrapper_attrs': [wrapper.blksize, wrapper.filelike.getvalue().decode()],
        'FileWrapper_is': mod_wsgi.FileWrapper is environ['wsgi.file_wrapper'],
        'LogHandler': [mod_wsgi.LogHandler.__module__, mod_wsgi.LogHandler.__name__,
                       issubclass(mod_wsgi.LogHandler, logging.Handler),
                       mod_wsgi.LogHandler().level],
        'stderr': describe(sys.stderr),
        'stderr_name': [sys.stderr.name, sys.stdout.name, sys.stderr.buffer.name],
    }


def writes(environ):
    errors = environ['wsgi.errors']
    errors.buffer.write(b'OBJ bytes line\n')
    errors.buffer.write(bytearray(b'OBJ bytearray line\n'))
    errors.buffer.write(memoryview(b'OBJ memoryview line\nOBJ two in one\n'))
    errors.write('OBJ str line\n')
    errors.writelines(['OBJ writelines a\n', 'OBJ writelines b\n'])
    errors.buffer.writelines([b'OBJ buffer writelines\n'])
    errors.write('OBJ partial ')
    errors.write('joined\n')
    print('OBJ print to errors', file=errors)
    errors.write('OBJ unterminated at the end')
    return 'ok'


def wrong_types(environ):
    errors = environ['wsgi.errors']
    return {
        'text_bytes': attempt(lambda: errors.write(b'x')),
        'text_int': attempt(lambda: errors.write(5)),
        'buffer_int': attempt(lambda: errors.buffer.write(5)),
        'buffer_writelines_int': attempt(lambda: errors.buffer.writelines(5)),
        'buffer_writelines_items': attempt(lambda: errors.buffer.writelines([1])),
    }


def keep(environ):
    kept['errors'] = environ['wsgi.errors']
    kept['errors'].write('OBJ in time\n')
    return 'ok'


def use_kept(environ):
    errors = kept.get('errors')
    if errors is None:
        return None
    return {
        'write': attempt(lambda: errors.write('OBJ too late\n')),
        'buffer_write': attempt(lambda: errors.buffer.write(b'OBJ too late\n')),
        'flush': attempt(errors.flush),
        'writelines': attempt(lambda: errors.buffer.writelines([b'OBJ too late\n'])),
        'close': attempt(errors.close),
        'closed': errors.closed,
    }


def log_levels(environ):
    logger.critical('OBJ-LOG critical')
    logger.error('OBJ-LOG error')
    logger.warning('OBJ-LOG warning')
    logger.info('OBJ-LOG info')
    logger.debug('OBJ-LOG debug')
    logger.log(25, 'OBJ-LOG level 25')
    logger.log(5, 'OBJ-LOG level 5')
    logger.warning('OBJ-LOG first\nOBJ-LOG second')
    t = threading.Thread(target=lambda: logger.error('OBJ-LOG from a thread'))
    t.start()
    t.join()
    return 'ok'


def reconfigure(environ):
    """Leaves its wsgi.errors changed: a later request must not get it."""
    environ['wsgi.errors'].reconfigure(newline='\r')
    environ['wsgi.errors'].write('OBJ reconfigured\n')
    return 'ok'


def line(environ):
    environ['wsgi.errors'].write('OBJ line %s\n' % environ['QUERY_STRING'])
    return 'ok'


ROUTES = {'/reconfigure': reconfigure, '/line': line, '/types': types, '/writes': writes, '/wrong-types': wrong_types, '/keep': keep,
          '/use-kept': use_kept, '/log-levels': log_levels}


def application(environ, start_response):
    result = ROUTES[environ.get('PATH_INFO', '')](environ)
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(result).encode()]

"""Per-interpreter helpers of mod_wsgi_rs, importable as ``mod_wsgi``.

The functions whose names start with ``_rs_`` are written in Rust and are
added to this module's namespace after it is executed.
"""
import io
import sys
import threading
import types
from _weakref import getweakrefcount as _getweakrefcount

version = (6, 0, 5)  # the mod_wsgi release whose behaviour this module follows
process_group = ''
application_group = ''
maximum_processes = 1
threads_per_process = 1


class RequestTimeout(BaseException):
    """Raised in a daemon request thread that ran past request-timeout
    (with interrupt-timeout set), as mod_wsgi 6 does; raised by an
    application, it too ends the request with a 504."""
    __module__ = 'mod_wsgi'


class Input:
    """wsgi.input: reads the request body from Apache with the GIL released."""
    __slots__ = ('_ctx',)
    __module__ = 'mod_wsgi'

    def __init__(self, ctx):
        self._ctx = ctx

    def read(self, size=-1):
        return _rs_input_read(self._ctx, -1 if size is None else size)

    def readline(self, size=-1):
        return _rs_input_readline(self._ctx, -1 if size is None else size)

    def readlines(self, hint=-1):
        lines, total = [], 0
        while True:
            line = _rs_input_readline(self._ctx, -1)
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = _rs_input_readline(self._ctx, -1)
        if not line:
            raise StopIteration
        return line

    def close(self):
        pass


class FileWrapper:
    """wsgi.file_wrapper: a real file becomes an Apache file bucket (sendfile);
    anything else is read in blocks of ``blksize``."""
    __slots__ = ('filelike', 'blksize')
    __module__ = 'mod_wsgi'

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def close(self):
        close = getattr(self.filelike, 'close', None)
        if close is not None:
            close()


_warned_str_write = False


class Log:
    """mod_wsgi.Log: the binary layer under wsgi.errors (and its .buffer).
    Bytes-like writes are cut into lines, each an error-log entry in the
    request's context; ``ctx`` is the request, None for sys.stdout /
    sys.stderr. Once its request is over (or it was closed) writing raises
    RuntimeError, as mod_wsgi 6's does. Not an io.IOBase: its finaliser
    would flush every request's object as it is freed."""

    __slots__ = ('_ctx', '_stream', '_name', '_expired', '_wrote', '_dirty')
    __module__ = 'mod_wsgi'
    closed = False
    encoding = 'utf-8'
    errors = 'replace'

    def __init__(self, ctx, stream, name):
        self._ctx = ctx
        self._stream = stream
        self._name = name
        self._expired = False
        # Its TextIOWrapper flushes it right after a write; a flush without
        # one comes from elsewhere (flush(), reconfigure(), detach(),
        # close()): the pair is then never handed out again (see errors_stream).
        self._wrote = False
        self._dirty = False

    @property
    def name(self):
        return self._name

    def _check(self, what):
        if self._expired:
            raise RuntimeError('%s() called on wsgi.errors after request completed' % what)

    def write(self, b):
        self._check('write')
        self._wrote = True
        if isinstance(b, str):
            global _warned_str_write
            if not _warned_str_write:
                _warned_str_write = True
                import warnings
                warnings.warn('Writing str to wsgi.errors.buffer / sys.stderr.buffer is '
                              'deprecated; write a bytes-like object instead.',
                              DeprecationWarning, 2)
            text = b
        else:
            try:
                data = memoryview(b)
            except TypeError:
                raise TypeError("a bytes-like object is required, not '%s'"
                                % type(b).__name__) from None
            text = str(data, 'utf-8', 'backslashreplace')
        _rs_log_write(self._ctx, self._stream, text)

    def writelines(self, lines):
        self._check('writelines')
        _rs_log_write(self._ctx, self._stream, '', 'writelines')
        try:
            lines = iter(lines)
        except TypeError as e:
            raise TypeError('writelines() argument must be an iterable of '
                            'bytes-like objects') from e
        for line in lines:
            self.write(line)

    def flush(self):
        if not self._wrote:
            self._dirty = True
        self._wrote = False
        _rs_log_flush(self._ctx, self._stream)

    def close(self):
        if not self._expired:
            try:
                self.flush()
            except Exception:
                pass
        # sys.stdout / sys.stderr stay usable: later errors must not be lost.
        self._expired = self._ctx is not None
        self._dirty = True

    def isatty(self):
        return False

    def readable(self):
        return False

    def seekable(self):
        return False

    def writable(self):
        return True

    def fileno(self):
        raise OSError('wsgi.errors log object has no file descriptor')


def _log_handler_type():
    import logging

    class LogHandler(logging.Handler):
        """mod_wsgi.LogHandler: records go to Apache's error log at the
        matching level (CRITICAL crit, ERROR error, WARNING warn, INFO
        info, DEBUG debug), one entry per line, with the caller's file and
        line for ErrorLogFormat's %F, in the request's context when this
        thread serves one. Apache's LogLevel filters them as well."""
        __module__ = 'mod_wsgi'

        def emit(self, record):
            try:
                msg = self.format(record)
            except Exception:
                self.handleError(record)
                return
            _rs_log_record(record.levelno, msg, getattr(record, 'pathname', None),
                           getattr(record, 'lineno', None))

    return LogHandler


LogHandler = _log_handler_type()

_TextIOWrapper = io.TextIOWrapper
_getrefcount = sys.getrefcount


class _ErrorsPool(threading.local):
    # [wrapper, log, wrapper's and log's reference counts when unused]
    pair = None


_errors_pool = _ErrorsPool()


def errors_stream(ctx):
    """A request's wsgi.errors. Making a TextIOWrapper costs as much as a
    tenth of a small request, so each thread hands out again the one of its
    previous request when nothing can tell: no reference to it or its Log
    is left (the counts are those of an unused pair), no weak reference,
    and it is as made (no attribute set, never reconfigured, detached,
    flushed or closed by the application)."""
    pair = _errors_pool.pair
    if pair is not None:
        w, log = pair[0], pair[1]
        if (_getrefcount(w) == pair[2] and _getrefcount(log) == pair[3]
                and not log._dirty and not _getweakrefcount(w)
                and w.line_buffering and w.write_through and w._CHUNK_SIZE == 8192
                and w.errors == 'replace' and w.encoding == 'utf-8' and not w.__dict__):
            log._ctx = ctx
            log._wrote = False
            return w
    _errors_pool.pair = None
    log = Log(ctx, 0, '<wsgi.errors>')
    w = _TextIOWrapper(log, 'utf-8', 'replace', None, True, True)
    w.__dict__
    pair = [w, log, 0, 0]
    # Measured as the check above sees them: held by `pair`, `w`/`log` and the call.
    pair[2] = _getrefcount(w)
    pair[3] = _getrefcount(log)
    _errors_pool.pair = pair
    return w


def log_stream(ctx, stream, name):
    """wsgi.errors, sys.stdout, sys.stderr: an io.TextIOWrapper (UTF-8,
    errors 'replace', line buffered, write-through) over a new Log, as
    mod_wsgi 6 makes them."""
    return _TextIOWrapper(Log(ctx, stream, name), 'utf-8', 'replace', None, True, True)


_load_lock = threading.RLock()


def load_script(name, path, mtime, reload, context):
    """The module ``name`` for a WSGI script file, executing it on first use
    and again when its modification time changed (if ``reload``). Returns
    (module, None) or, when it failed, (None, (phase, exception)) where phase
    is 'compile' (reading or compiling) or 'exec' (running the module body),
    the two failures mod_wsgi 6 logs differently. ``context`` names the
    interpreter for the load line."""
    with _load_lock:
        module = sys.modules.get(name)
        if module is not None and (not reload or getattr(module, '__mtime__', None) == mtime):
            return module, None
        _rs_log_info("%s WSGI script '%s' into %s."
                     % ('Reloading' if module else 'Loading', path, context))
        try:
            with open(path, 'rb') as f:
                source = f.read()
            code = compile(source, path, 'exec', dont_inherit=True)
        except BaseException as e:
            # The loader's own frame is noise in the logged traceback.
            return None, ('compile', e.with_traceback(None))
        module = types.ModuleType(name)
        module.__file__ = path
        module.__mtime__ = mtime
        sys.modules[name] = module
        try:
            exec(code, module.__dict__)
        except BaseException as e:
            if sys.modules.get(name) is module:
                del sys.modules[name]
            tb = e.__traceback__
            return None, ('exec', e.with_traceback(tb.tb_next if tb else None))
        return module, None


def format_exception(exc, tb):
    import traceback
    return ''.join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def add_python_path(dirs):
    """WSGIPythonPath: each directory goes through site.addsitedir (so .pth
    files work) and everything added moves to the front of sys.path."""
    import site
    before = list(sys.path)
    for d in dirs:
        site.addsitedir(d)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before


class Restricted:
    """sys.stdin / sys.stdout under WSGIRestrictStdin / WSGIRestrictStdout
    On: any use raises OSError, as mod_wsgi's Restricted object does."""
    __slots__ = ('_what',)

    def __init__(self, what):
        object.__setattr__(self, '_what', what)

    def __getattribute__(self, name):
        raise OSError('%s access restricted by mod_wsgi' % object.__getattribute__(self, '_what'))

    def __setattr__(self, name, value):
        raise OSError('%s access restricted by mod_wsgi' % object.__getattribute__(self, '_what'))

    def __repr__(self):
        return '<mod_wsgi.Restricted %s>' % object.__getattribute__(self, '_what')


def restrict_streams(stdin, stdout):
    """WSGIRestrictStdin / WSGIRestrictStdout On: the stream raises OSError."""
    if stdin:
        sys.stdin = Restricted('sys.stdin')
    if stdout:
        sys.stdout = Restricted('sys.stdout')


def restrict_signal():
    """WSGIRestrictSignal On: signal.signal() from the application is ignored
    (Apache or the daemon process owns the signals) and logged with the
    caller's stack, as mod_wsgi 6 does; the handler is returned. In a
    process forked from this one the real function runs."""
    import os
    import signal
    real = signal.signal
    if getattr(real, '_mod_wsgi_intercept', False):
        return
    owner = os.getpid()

    def intercept(signalnum, handler):
        if os.getpid() != owner:
            return real(signalnum, handler)
        import traceback
        _rs_log_info('Ignoring Python signal handler registration for signal %d '
                     'in WSGI process; mod_wsgi manages signals.' % signalnum)
        for entry in traceback.format_stack()[:-1]:
            for line in entry.rstrip('\n').split('\n'):
                _rs_log_info(line)
        return handler

    intercept.__name__ = intercept.__qualname__ = 'signal'
    intercept.__doc__ = real.__doc__
    intercept._mod_wsgi_intercept = True
    signal.signal = intercept


def _install_exit_hook(record):
    """Daemon processes: os._exit(n) first records n for the Apache parent."""
    import os
    real = os._exit

    def _exit(status):
        record(status)
        real(status)

    _exit.__doc__ = real.__doc__
    os._exit = _exit


def _dump_stacks():
    """Daemon processes: where each Python thread is (request-timeout)."""
    import traceback
    names = {t.ident: t.name for t in threading.enumerate()}
    lines = []
    for ident, frame in sys._current_frames().items():
        lines.append('Thread %d (%s):' % (ident, names.get(ident, '?')))
        for entry in traceback.format_stack(frame):
            lines.extend('  ' + line for line in entry.rstrip().splitlines())
    return lines


def _thread_stack(ident):
    """Daemon processes: the stack of the thread about to get a RequestTimeout,
    innermost frame first, in mod_wsgi 6's lines."""
    frame = sys._current_frames().get(ident)
    lines = []
    while frame is not None:
        code, back = frame.f_code, frame.f_back
        where = '"%s", line %d, in %s' % (code.co_filename, frame.f_lineno, code.co_name)
        if not lines:
            lines.append('Thread %d executing file %s' % (ident, where))
        else:
            lines.append('called from file %s%s' % (where, ',' if back is not None else '.'))
        frame = back
    return lines


_REFUSALS = ('subinterpreter', 'sub-interpreter', 'per-interpreter gil',
             'more than once per process', 'once per interpreter process')


def _watch_extension_loading():
    """Sub-interpreters: an ImportError raised while an extension module
    initialises is tagged with that module's name (importlib removes its own
    frames from the traceback, and with them the name)."""
    from importlib.machinery import ExtensionFileLoader
    create = ExtensionFileLoader.create_module

    def create_module(self, spec):
        try:
            return create(self, spec)
        except ImportError as e:
            if getattr(e, '_wsgi_rs_extension', None) is None:
                e._wsgi_rs_extension = spec.name
            raise

    create_module.__doc__ = create.__doc__
    ExtensionFileLoader.create_module = create_module


def refused_extension(exc):
    """(module, reason) when ``exc`` comes from an extension module that
    refuses to load in a sub-interpreter, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ImportError):
            text = str(exc)
            if any(r in text.lower() for r in _REFUSALS):
                name = getattr(exc, '_wsgi_rs_extension', None)
                if name is None and text.startswith('module '):
                    name = text.split()[1].strip("'\"")
                return (name or '?', text)
        exc = exc.__cause__ or exc.__context__
    return None


def _shutdown(deadline):
    """Process exit: waits (until ``deadline``, a time.monotonic() value) for
    the non-daemon threads the application started, then runs the atexit
    callbacks. Returns the names of threads still running."""
    import time
    current = threading.current_thread()
    for t in threading.enumerate():
        if t is current or t.daemon or t is threading.main_thread():
            continue
        t.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in threading.enumerate()
            if t is not current and not t.daemon and t.is_alive()
            and t is not threading.main_thread()]
    import atexit
    atexit._run_exitfuncs()
    for name in ('stdout', 'stderr'):
        stream = getattr(sys, name, None)
        if stream is not None:
            try:
                stream.flush()
            except Exception:
                pass
    return left


# Events (mod_wsgi's subscribe_events / subscribe_shutdown). Everything is
# per interpreter: each interpreter executes this module on its own.

event_callbacks = []
shutdown_callbacks = []
signal_callbacks = []
active_requests = {}


def subscribe_events(callback):
    """Calls ``callback(name, **payload)`` for each event of this interpreter:
    request_started, response_started, request_finished, request_exception,
    process_stopping. Returns the callback (usable as a decorator)."""
    event_callbacks.append(callback)
    return callback


def subscribe_shutdown(callback):
    """Calls ``callback('process_stopping', shutdown_reason=...)`` when the
    process stops (also with WSGIDestroyInterpreter Off). Returns it."""
    shutdown_callbacks.append(callback)
    return callback


def subscribe_signals(callback):
    """Calls ``callback('process_signal', signum=..., signame=...)`` when a
    daemon process gets SIGHUP or SIGUSR2 (on a thread of its own). Outside
    daemon processes, as with mod_wsgi 6, the callback is not registered and
    the caller is logged. Returns it."""
    if process_group:
        signal_callbacks.append(callback)
        return callback
    import traceback
    _rs_log_info('mod_wsgi.subscribe_signals() called outside daemon mode; '
                 'the callback will not be invoked. Signal callbacks are only '
                 'delivered in daemon mode processes.')
    for entry in traceback.format_stack()[:-1]:
        for line in entry.rstrip('\n').split('\n'):
            _rs_log_info(line)
    return callback


def _call_callbacks(name, callbacks, event):
    """Each callback of a snapshot of the list; a dict it returns is merged
    into the payload the next one gets; its exceptions are logged."""
    for callback in list(callbacks):
        try:
            res = callback(name, **event)
            if isinstance(res, dict):
                event.update(res)
        except BaseException as e:
            _log_callback_error(name, e)
    return event


def _log_callback_error(name, e):
    try:
        text = format_exception(e, e.__traceback__)
        if isinstance(e, SystemExit):
            first = "WSGI0190: %s exception raised by event callback for '%s'; ignored."
        else:
            first = "WSGI0112: %s exception raised by event callback for '%s'."
        _rs_log_error(first % (type(e).__name__, name), text)
    except BaseException:
        pass


def _publish(name, event):
    _call_callbacks(name, event_callbacks, event)
    if name == 'process_stopping':
        _call_callbacks(name, shutdown_callbacks, event)
    elif name == 'process_signal':
        _call_callbacks(name, signal_callbacks, event)
    return event


_events_local = threading.local()


def _thread_usage():
    try:
        import resource
        u = resource.getrusage(resource.RUSAGE_THREAD)
        return (u.ru_utime, u.ru_stime)
    except Exception:
        return None


def _request_values(environ, hand_off=None):
    """What the events report from the request's environ (read before the
    application may change it). In a daemon process, `hand_off` is what the
    Apache child told it: (server_pid, daemon_connects, daemon_restarts,
    queue_start, daemon_start); in Apache's children these have mod_wsgi's
    embedded-mode values (this process's pid, 0, 0.0)."""
    import os

    def seconds(key):
        try:
            return float(environ.get(key) or 0.0)
        except (TypeError, ValueError):
            return 0.0

    server_pid, connects, restarts, queue_start, daemon_start = \
        hand_off or (os.getpid(), 0, 0, 0.0, 0.0)
    return {
        'thread_id': environ.get('mod_wsgi.thread_id', 0),
        'daemon_connects': connects,
        'daemon_restarts': restarts,
        'server_pid': server_pid,
        'request_start': seconds('mod_wsgi.request_start'),
        'queue_start': queue_start,
        'daemon_start': daemon_start,
    }


def _event(request_id, *parts):
    """A payload: request_id (when Apache gave one) then the parts' items."""
    event = {} if request_id is None else {'request_id': request_id}
    for part in parts:
        event.update(part)
    return event


def _request_started(request_id, request_data, environ, application, callable_object,
                     application_start, hand_off):
    """request_started; returns the application to call (a callback may
    replace ``application_object`` in the payload)."""
    values = _request_values(environ, hand_off)
    _events_local.started = (request_data, values, _thread_usage())
    event = _event(request_id, values, {
        'application_object': application, 'callable_object': callable_object,
        'request_environ': environ, 'application_start': application_start,
        'request_data': request_data})
    _publish('request_started', event)
    return event.get('application_object', application)


def _response_started(request_id, request_data, status, headers, exc_info):
    _publish('response_started', _event(request_id, {
        'response_status': status, 'response_headers': headers,
        'exception_info': exc_info, 'request_data': request_data}))


def _request_exception(request_id, request_data, exc, tb):
    _publish('request_exception', _event(request_id, {
        'exception_info': (type(exc), exc, tb or exc.__traceback__),
        'request_data': request_data}))


def _request_finished(request_id, request_data, environ, application_start, status,
                      input_reads, input_length, input_time, output_length, output_writes):
    import time
    finish = time.time()
    started = getattr(_events_local, 'started', None)
    _events_local.started = None
    if started is not None and started[0] is request_data:
        values, usage = started[1], started[2]
    else:
        values, usage = _request_values(environ), None
    application_time = max(0.0, finish - application_start)
    event = _event(request_id, values)
    del event['daemon_connects'], event['daemon_restarts']
    event['input_reads'] = input_reads
    event['input_length'] = input_length
    event['input_time'] = input_time
    event['output_length'] = output_length
    event['output_writes'] = output_writes
    end = _thread_usage() if usage is not None else None
    if end is not None:
        user = max(0.0, end[0] - usage[0])
        system = max(0.0, end[1] - usage[1])
        total = user + system
        if total and total > application_time:
            user = user / total * application_time
            system = application_time - user
        event['cpu_user_time'] = user
        event['cpu_system_time'] = system
        event['cpu_time'] = user + system
    event['output_time'] = 0.0
    event['application_finish'] = finish
    event['application_time'] = application_time
    event['status'] = status
    event['gil_wait_time'] = 0.0
    event['gil_wait_count'] = 0
    event['request_data'] = request_data
    _publish('request_finished', event)


def _process_stopping(reason):
    _publish('process_stopping', {'shutdown_reason': reason})


def _process_signal(signum, signame):
    _publish('process_signal', {'signame': signame, 'signum': signum})

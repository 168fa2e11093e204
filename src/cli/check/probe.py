# The probe of `mod_wsgi_rs check`: loads a WSGI script (or module) the way
# mod_wsgi_rs does, in this process's main interpreter or in sub-interpreters,
# and reports what happened to the Rust side.
#
# Run as `python -s -B -c BOOT MODE KIND TARGET NAME CALLABLE GROUP WORKDIR [DIR...]`
# with the module's helpers.py, a NUL and this file on stdin; BOOT puts them
# in HELPERS and SOURCE and executes SOURCE. MODE is `main` (load in the main
# interpreter) or `sub` / `sub-own-gil` (load in a sub-interpreter that shares
# the GIL / has its own, then in a second one). The application's output goes
# to stderr; the report goes to the original stdout, one record a line:
# `key value`, with backslashes and newlines in the value escaped. KIND is
# `script` (TARGET a file, executed as the module NAME) or `module` (TARGET
# imported); GROUP the application group; WORKDIR the working directory (or
# empty: `/`, not on sys.path) and the DIRs the Python path.
import os
import sys
import types


def emit(fd, key, value=''):
    value = str(value).replace('\\', '\\\\').replace('\n', '\\n')
    data = ('%s %s\n' % (key, value)).encode('utf-8', 'backslashreplace')
    while data:
        data = data[os.write(fd, data):]


def set_up(group, workdir, pypath):
    """What mod_wsgi_rs does to each interpreter before it loads a script:
    its `mod_wsgi` and `apache` modules, the Python path (site.addsitedir,
    moved to the front), the working directory at the front of sys.path."""
    helpers = types.ModuleType('mod_wsgi')
    helpers.__dict__['_rs_log_info'] = lambda text: None
    exec(compile(HELPERS, 'mod_wsgi', 'exec'), helpers.__dict__)
    helpers.application_group = '' if group in ('', '%{GLOBAL}') else group
    helpers.process_group = ''
    helpers.maximum_processes = 1
    helpers.threads_per_process = 1
    version = os.environ.pop('MOD_WSGI_RS_CHECK_VERSION', '0.0.0').split('.')
    helpers.mod_wsgi_rs_version = tuple(int(p) for p in version[:3] if p.isdigit())
    sys.modules['mod_wsgi'] = helpers
    sys.modules['mod_wsgi_rs'] = helpers
    apache = types.ModuleType('apache')
    apache.version = (2, 4)
    apache.description = 'Apache/2.4'
    apache.mpm_name = 'event'
    apache.build_date = ''
    apache.maximum_processes = 1
    apache.threads_per_process = 1
    sys.modules['apache'] = apache
    sys.argv = ['']
    # `-c` put the current directory first; the module's interpreters have no such entry.
    if sys.path[:1] == ['']:
        del sys.path[0]
    if pypath:
        helpers.add_python_path(pypath)
    if workdir:
        sys.path.insert(0, workdir)
    if group not in ('', '%{GLOBAL}'):
        helpers._watch_extension_loading()
    return helpers


def load(kind, target, name):
    """The script as mod_wsgi_rs executes it (the module `name`,
    `_mod_wsgi_<md5 of the path>`, whose __file__ is the script), or the
    imported module."""
    if kind == 'module':
        __import__(target)
        return sys.modules[target]
    with open(target, 'rb') as f:
        source = f.read()
    code = compile(source, target, 'exec', dont_inherit=True)
    module = types.ModuleType(name)
    module.__file__ = target
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def describe(obj):
    if isinstance(obj, types.FunctionType):
        return 'function'
    if isinstance(obj, type):
        return 'class'
    return "'%s' object" % type(obj).__name__


def callables_in(module):
    """Names the application could have meant: functions defined in the
    module and callable objects (Flask, Django's WSGIHandler), not classes
    or imported functions."""
    found = []
    for name, value in sorted(vars(module).items()):
        if name.startswith('_') or not callable(value) or isinstance(value, (type, types.ModuleType)):
            continue
        if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
            if getattr(value, '__module__', None) != module.__name__:
                continue
        found.append(name)
    return found


def check_callable(fd, prefix, module, name):
    if not hasattr(module, name):
        emit(fd, prefix + 'callable', 'missing')
        emit(fd, prefix + 'candidates', ', '.join(callables_in(module)))
        return
    app = getattr(module, name)
    if not callable(app):
        emit(fd, prefix + 'callable', 'not-callable')
        emit(fd, prefix + 'type', describe(app))
        return
    emit(fd, prefix + 'callable', 'ok')
    emit(fd, prefix + 'type', describe(app))
    import inspect
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(object(), object())
    except TypeError:
        emit(fd, prefix + 'signature', '%s%s' % (name, signature))


def load_and_report(fd, prefix, kind, target, name, callable_name, group, workdir, pypath):
    """Sets up this interpreter, loads the application and reports it."""
    helpers = set_up(group, workdir, pypath)
    try:
        module = load(kind, target, name)
    except BaseException as e:
        import traceback
        emit(fd, prefix + 'load', 'failed')
        emit(fd, prefix + 'exception', traceback.format_exception_only(type(e), e)[-1].strip())
        # Without the probe's own frames (exec, import_module).
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_globals is globals():
            tb = tb.tb_next
        report = traceback.TracebackException(type(e), e, tb)
        # Nor importlib's, nor that of the module's extension-loading watch.
        report.stack = traceback.StackSummary.from_list(
            [f for f in report.stack
             if f.filename != 'mod_wsgi' and not f.filename.startswith('<frozen importlib')])
        emit(fd, prefix + 'traceback', ''.join(report.format()).rstrip())
        refused = helpers.refused_extension(e)
        if refused is not None and group not in ('', '%{GLOBAL}'):
            emit(fd, prefix + 'refused', refused[0])
            emit(fd, prefix + 'reason', refused[1])
        elif isinstance(e, ImportError):
            emit(fd, prefix + 'sys_path', '\n'.join(sys.path))
        return
    emit(fd, prefix + 'load', 'ok')
    check_callable(fd, prefix, module, callable_name)


def sub_interpreters(fd, own_gil, args):
    """Loads the application in a sub-interpreter and, if that worked, in a
    second one of the same process (extension modules that load in one
    interpreter per process only refuse that one)."""
    try:
        import _interpreters as interpreters  # 3.13+
        create = lambda: interpreters.create('isolated' if own_gil else 'legacy')  # noqa: E731
        run = interpreters.exec
    except ImportError:
        try:
            import _xxsubinterpreters as interpreters  # 3.8-3.12
        except ImportError:
            emit(fd, 'unsupported', 'this Python has no _interpreters or _xxsubinterpreters module')
            return
        if sys.version_info >= (3, 12):
            create = lambda: interpreters.create(isolated=own_gil)  # noqa: E731
        else:
            create = interpreters.create
        run = interpreters.run_string
    for prefix in ('first.', 'second.'):
        code = '_SUB = True\nHELPERS = %r\n%s\nload_and_report(%r, %r, *%r)\n' % (
            HELPERS, SOURCE, fd, prefix, tuple(args))
        try:
            interp = create()
        except Exception as e:
            emit(fd, 'unsupported', 'a sub-interpreter could not be created: %s' % e)
            return
        try:
            failed = run(interp, code)
        except Exception as e:  # 3.8-3.12: RunFailedError
            failed = e
        if failed is not None:
            emit(fd, prefix + 'load', 'failed')
            emit(fd, prefix + 'exception', getattr(failed, 'formatted', failed))
            return
        # Not destroyed: an application's threads may still run in it, and
        # the process ends with os._exit.


def main():
    mode, kind, target, name, callable_name, group, workdir = sys.argv[1:8]
    pypath = sys.argv[8:]
    fd = os.dup(1)
    os.dup2(2, 1)
    os.chdir(workdir or '/')
    args = (kind, target, name, callable_name, group, workdir, pypath)
    if mode == 'main':
        load_and_report(fd, '', *args)
    else:
        sub_interpreters(fd, mode == 'sub-own-gil', args)
    emit(fd, 'done')
    sys.stdout.flush()
    sys.stderr.flush()
    # No interpreter shutdown: the application's threads and atexit
    # callbacks are not waited for.
    os._exit(0)


if __name__ == '__main__' and not globals().get('_SUB'):
    main()

import sys


def application(environ, start_response):
    print('hello from print')
    print('to stderr', file=sys.stderr)
    environ['wsgi.errors'].write('via wsgi.errors\n')
    environ['wsgi.errors'].writelines(['line one\n', 'line two\n'])
    sys.stderr.write('partial line without newline')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'logged']

class It:
    def __iter__(self):
        return iter([b'x'])
    def __getattr__(self, name):
        if name == 'close':
            raise KeyError('close lookup')
        raise AttributeError(name)
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return It()

def application(environ, start_response):
    raise ValueError('boom')

# A script that does not compile: WSGI0105.
def application(environ, start_response)
    pass

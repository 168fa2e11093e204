def application(environ, start_response):
    raise SystemExit(3)

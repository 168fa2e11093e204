"""Loaded by WSGIImportScript when a process starts (before any request)."""
import builtins
import os

builtins.WSGI_RS_IMPORTED = os.getpid()

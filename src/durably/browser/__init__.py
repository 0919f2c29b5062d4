"""Glue between the browser worker and the runtime.

Nothing here imports `js` or `pyodide`: the worker passes plain callables in,
so the protocol is tested on CPython too.
"""

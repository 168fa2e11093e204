raise RuntimeError('at import')

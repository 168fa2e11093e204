raise ImportError('this script cannot be imported')

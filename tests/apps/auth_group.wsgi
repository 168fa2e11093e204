"""WSGIAuthGroupScript for tests/test_auth.py."""
GROUPS = {'alice': ['admins', b'staff'], 'bob': ('users',), 'carol': []}


def groups_for_user(environ, user):
    if user == 'boom':
        raise RuntimeError('group script exploded')
    return iter(GROUPS.get(user, ()))

"""Module-level state, to show which interpreter a request ran in."""
hits = 0

"""CLI tests (a package so that test module names cannot clash with tests/ elsewhere)."""

"""The infra tests' fixtures; their helpers live in infra_support.py, imported by that unique name
(another folder's conftest.py would shadow `import conftest`)."""

from infra_support import _main_thread_event_loop, program  # noqa: F401  (fixtures, registered by name)

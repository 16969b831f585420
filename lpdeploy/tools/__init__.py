"""What people run: the ``lpdeploy`` command line, its REST client, and ``make run``."""

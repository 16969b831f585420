"""Set-up that must happen before any test module is imported.

With the ``cluster`` extra installed (Crossbar), autobahn finds ``passlib``,
which imports the standard ``crypt`` module, deprecated in Python 3.11. The
first import of ``buildbot.test`` turns every warning into an error, and
Buildbot's test fakes import autobahn after that: the deprecation would fail
every harness test module. Importing autobahn's auth here first, with the
warning ignored, leaves nothing to warn about later.
"""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import autobahn.wamp.auth  # noqa: F401
    except ImportError:  # autobahn is a Buildbot dependency; without it nothing here needs the fix
        pass

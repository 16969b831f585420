"""lpdeploy: a Buildbot plugin for a gated, tested-once release flow.

devel ─(gate: full suite)→ stable ─(promote: no re-test)→ production-devel /
production-stable. See README.rst for the site file, the CLI and the rules.

The layers, each a package, imports running one way only (``tests/test_layers.py``
keeps it so): ``core`` is the domain's values, rules and pure decisions — no
Buildbot, no Twisted, no subprocess (``core/ruff.toml`` bans them); ``stores``
(ledger, registry, timings: an interface, a database store and an in-memory
twin each) and ``git`` (``gitops``, the only code that runs git, and
``upstream``, which runs it from the reactor) build on the core; ``facts``
reads what the flow knows off the upstream and the stores (the embargo);
``master`` (change source, schedulers, force forms, build steps) and ``web``
(logins, authorization, the guarded REST API and event streams, status pages,
the dashboard) adapt Buildbot's events and requests to the core's decisions;
``configurator`` wires it all into a BuildmasterConfig from the site file; and
``tools`` (the ``lpdeploy`` CLI, its REST client, ``make run``) reach a master
only over HTTP, never through its code.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

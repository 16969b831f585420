"""lpdeploy: a Buildbot plugin for a gated, tested-once release flow.

devel ─(gate: full suite)→ stable ─(promote: no re-test)→ production-devel /
production-stable. See README.rst for the site file, the CLI and the rules.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

"""The flow as Buildbot plugins: the change source, schedulers, force forms and build steps."""

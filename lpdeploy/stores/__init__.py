"""What the flow remembers, in Buildbot's database: each store an interface, a database
implementation and an in-memory twin that pass the same contract tests."""

"""Buildbot's web server for lpdeploy: who may log in and read what, the guarded REST API and
event streams, the status pages and the Pipeline dashboard."""

"""The pure core: the domain's values, the rules and the decisions. No Buildbot, no Twisted, no I/O
(the site file is read here, once, by ``settings.load_settings``)."""

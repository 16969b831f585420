"""What the master's plugins and its web pages share: the facts of the flow read off the
upstream and the stores (the embargo)."""

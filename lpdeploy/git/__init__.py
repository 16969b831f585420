"""Git: ``gitops`` is the only code that runs git; ``upstream`` runs it from the reactor."""

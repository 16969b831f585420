"""Build steps, one module per flow: the gate and promotion (``flow``), security fixes,
the sharded suite, deploys and the losa's bookkeeping."""

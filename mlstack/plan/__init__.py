"""The offline plan: the real Pulumi program run under a recording mock monitor."""

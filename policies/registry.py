"""registry rules."""

"""data_services rules."""

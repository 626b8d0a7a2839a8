"""Entry points: one thin module per program (argv, messages, exit codes)."""

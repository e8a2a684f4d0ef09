"""The applications: one module per top-level script, named after it. None imports another."""

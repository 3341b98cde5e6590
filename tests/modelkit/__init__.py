"""Test kit for the model runtime: a fake model hub on 127.0.0.1 (and, later, tiny models)."""

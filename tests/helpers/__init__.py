"""Shared test helpers: a GCS emulator and Beam's portable job service, both real and on 127.0.0.1."""

"""Test-only: with a GCS emulator, skip Beam's Google credential lookup (about 25 s of retries per process).

This directory is put on PYTHONPATH for test subprocesses (Beam workers, job services, staging workers),
so every process that talks to the emulator connects anonymously at once.
"""

import os

if os.environ.get("STORAGE_EMULATOR_HOST"):
    from apache_beam.internal.gcp import auth as _auth

    _auth._Credentials._credentials_init = True
    _auth._Credentials._credentials = None

"""A real GCS emulator (gcp-storage-emulator) on 127.0.0.1 for the test session, and bucket helpers.

The fixture points google-cloud-storage and Beam's gcsio at it through `STORAGE_EMULATOR_HOST`, short-circuits
Beam's credential lookup in this process, and puts `site/` (a sitecustomize doing the same) on PYTHONPATH so
that worker subprocesses inherit both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.net import free_port, wait_for_port

SITE_DIR = str(Path(__file__).parent / "site")
REPO_ROOT = str(Path(__file__).resolve().parents[2])


def _split(url: str) -> tuple[str, str]:
    """(bucket, object prefix ending in "/" or empty) of a gs:// URL."""
    bucket, _, prefix = url[len("gs://") :].partition("/")
    return bucket, prefix.rstrip("/") + "/" if prefix.strip("/") else ""


@dataclass(frozen=True)
class Emulator:
    host: str

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="test-project", credentials=AnonymousCredentials())

    def bucket(self, name: str) -> str:
        """Create the bucket (if needed) and return its `gs://` URL."""
        client = self.client()
        if client.lookup_bucket(name) is None:
            client.create_bucket(name)
        return f"gs://{name}"

    def upload_tree(self, local: str | Path, url: str) -> str:
        """Copy a local directory tree to `gs://bucket/prefix`, keeping relative paths; return the URL."""
        bucket_name, _, prefix = url[len("gs://") :].partition("/")
        bucket = self.client().bucket(bucket_name)
        for path in sorted(Path(local).rglob("*")):
            if path.is_file():
                name = "/".join(p for p in (prefix.rstrip("/"), str(path.relative_to(local))) if p)
                bucket.blob(name).upload_from_filename(str(path))
        return url

    def download_tree(self, url: str, local: str | Path) -> Path:
        """Copy every object under `gs://bucket/prefix/` to a local directory; return it."""
        bucket_name, prefix = _split(url)
        for blob in self.client().list_blobs(bucket_name, prefix=prefix):
            target = Path(local, blob.name[len(prefix) :])
            target.parent.mkdir(parents=True, exist_ok=True)
            blob.download_to_filename(str(target))
        return Path(local)

    def names(self, url: str) -> list[str]:
        """Object names under `gs://bucket/prefix/`, relative to the prefix."""
        bucket_name, prefix = _split(url)
        return sorted(b.name[len(prefix) :] for b in self.client().list_blobs(bucket_name, prefix=prefix))


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for test subprocesses: this repo and the credential short-circuit importable."""
    env = dict(os.environ, **(extra or {}))
    paths = [SITE_DIR, REPO_ROOT, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


@pytest.fixture(scope="session")
def gcs():
    from apache_beam.internal.gcp import auth
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    wait_for_port(port)
    saved_env = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "PYTHONPATH")}
    saved_auth = (auth._Credentials._credentials_init, auth._Credentials._credentials)
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    os.environ["PYTHONPATH"] = subprocess_env()["PYTHONPATH"]
    auth._Credentials._credentials_init, auth._Credentials._credentials = True, None
    try:
        yield Emulator(os.environ["STORAGE_EMULATOR_HOST"])
    finally:
        auth._Credentials._credentials_init, auth._Credentials._credentials = saved_auth
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()

"""An S3 server in this process for the object-storage tests: moto's ThreadedMotoServer on
127.0.0.1 at a free port, with dummy credentials and `AWS_ENDPOINT_URL_S3` set the standard way
(the sweep reads no endpoint or credentials of its own)."""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass

import s3fs
from moto.server import ThreadedMotoServer

S3_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    server: ThreadedMotoServer
    endpoint: str
    bucket: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}"

    def environment(self) -> dict[str, str]:
        """What a process (a Ray node, an MLflow server) needs to reach this server."""
        return S3_ENVIRONMENT | {"AWS_ENDPOINT_URL_S3": self.endpoint}

    def filesystem(self) -> s3fs.S3FileSystem:
        return s3fs.S3FileSystem(use_listings_cache=False, skip_instance_cache=True)

    def objects(self, prefix: str = "") -> list[str]:
        """Every object's key under the bucket (or a prefix of it)."""
        fs = self.filesystem()
        root = f"{self.bucket}/{prefix}".rstrip("/")
        return sorted(fs.find(root)) if fs.exists(root) else []

    def stop(self) -> None:
        self.server.stop()


def start_s3_server(monkeypatch, bucket: str | None = None) -> S3Server:
    """Starts the server, points this process's AWS environment at it and makes a bucket
    (or, given one an earlier server of this process made, serves it again: moto keeps its
    buckets in the process)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in (S3_ENVIRONMENT | {"AWS_ENDPOINT_URL_S3": endpoint}).items():
        monkeypatch.setenv(name, value)
    # A file system cached by an earlier test would still talk to that test's server.
    s3fs.S3FileSystem.clear_instance_cache()
    if bucket is None:
        bucket = f"sweep-{uuid.uuid4().hex[:8]}"
        s3fs.S3FileSystem(skip_instance_cache=True).mkdir(bucket)
    assert os.environ["AWS_ENDPOINT_URL_S3"] == endpoint
    return S3Server(server, endpoint, bucket)

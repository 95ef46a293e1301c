"""Asset zips in S3 (``asset_storage_connection_type: s3``): object ``<id>.zip`` in the bucket.

The connection is a terafoundation ``s3`` connector (Teraslice's keys: ``endpoint``,
``accessKeyId``, ``secretAccessKey``, ``region``, ``forcePathStyle``, ``sslEnabled``); the
bucket is ``asset_storage_bucket`` (default ``ts-assets-<cluster name>``, as Teraslice) and is
created when missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from teraslice_k8s.store.assets import ASSET_KIND
from teraslice_k8s.store.base import RecordNotFound, StoreError


def _key(asset_id: str) -> str:
    return f"{asset_id}.zip"


class S3Blobs:
    """:class:`~teraslice_k8s.store.assets.BlobStorage` in one S3 bucket."""

    def __init__(self, settings: Mapping[str, Any], bucket: str) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        endpoint = settings.get("endpoint")
        if endpoint and settings.get("sslEnabled") is False and str(endpoint).startswith("https://"):
            endpoint = "http://" + str(endpoint)[len("https://") :]
        path_style = settings.get("forcePathStyle", True)
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            aws_access_key_id=settings.get("accessKeyId"),
            aws_secret_access_key=settings.get("secretAccessKey"),
            region_name=settings.get("region") or "us-east-1",
            config=Config(s3={"addressing_style": "path" if path_style else "auto"}),
        )
        try:
            self._client.head_bucket(Bucket=bucket)
        except self._client.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise StoreError(f"S3 bucket {bucket}: {err}") from err
            self._client.create_bucket(Bucket=bucket)
        except Exception as err:  # botocore connection errors have no common base worth naming
            raise StoreError(f"cannot reach S3 for bucket {bucket}: {err}") from err

    def put(self, asset_id: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=_key(asset_id), Body=data)
        except Exception as err:
            raise StoreError(f"S3 put {self.bucket}/{_key(asset_id)}: {err}") from err

    def get(self, asset_id: str) -> bytes:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=_key(asset_id))
        except self._client.exceptions.NoSuchKey:
            raise RecordNotFound(ASSET_KIND, asset_id) from None
        except Exception as err:
            raise StoreError(f"S3 get {self.bucket}/{_key(asset_id)}: {err}") from err
        data: bytes = response["Body"].read()
        return data

    def exists(self, asset_id: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=_key(asset_id))
        except self._client.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StoreError(f"S3 head {self.bucket}/{_key(asset_id)}: {err}") from err
        return True

    def delete(self, asset_id: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=_key(asset_id))
        except Exception as err:
            raise StoreError(f"S3 delete {self.bucket}/{_key(asset_id)}: {err}") from err

    def ids(self) -> set[str]:
        found: set[str] = set()
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if key.endswith(".zip"):
                    found.add(key[: -len(".zip")])
        return found

    def close(self) -> None:
        self._client.close()

"""Asset records in the SQLite state file: table ``assets`` (one row per asset id).

The row keeps the record as JSON (``doc``, without the zip) and the zip's base64 text in
``blob``; ``name``, ``version`` and ``created`` are columns so listings and resolution read
through an index. Same concurrency model as :mod:`teraslice_k8s.store.sqlite` (WAL, one
connection per thread, short ``BEGIN IMMEDIATE`` writes; both use
:mod:`teraslice_k8s.store.sqlite_connections`), on its own connections.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from teraslice_k8s.store.assets import ASSET_KIND, DEFAULT_ASSET_PAGE
from teraslice_k8s.store.base import Page, Record, RecordExists, RecordNotFound, StoreError
from teraslice_k8s.store.query import check_page
from teraslice_k8s.store.sqlite_connections import SqliteConnections

SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    created TEXT NOT NULL,
    doc TEXT NOT NULL,
    blob TEXT
);
CREATE INDEX IF NOT EXISTS assets_by_name ON assets (name, created)
"""
_COLUMNS = {"id": "id", "name": "name", "version": "version", "_created": "created"}


class SqliteAssetIndex:
    """:class:`~teraslice_k8s.store.assets.AssetIndex` in the SQLite file at ``path``."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._db = SqliteConnections(self.path, busy_timeout=busy_timeout, label="assets")
        with self._db.write() as conn:
            for statement in SCHEMA.split(";"):
                conn.execute(statement)

    def create(self, record: Record) -> None:
        doc = {k: v for k, v in record.items() if k != "blob"}
        try:
            with self._db.write() as conn:
                conn.execute(
                    "INSERT INTO assets (id, name, version, created, doc, blob) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record["id"],
                        record["name"],
                        record["version"],
                        record["_created"],
                        json.dumps(doc, separators=(",", ":")),
                        record.get("blob"),
                    ),
                )
        except StoreError as error:
            if isinstance(error.__cause__, sqlite3.IntegrityError):
                raise RecordExists(ASSET_KIND, record["id"]) from None
            raise

    def get(self, asset_id: str, *, with_blob: bool = False) -> Record:
        with self._db.errors():
            row = self._db.conn().execute("SELECT doc, blob FROM assets WHERE id = ?", (asset_id,)).fetchone()
        if row is None:
            raise RecordNotFound(ASSET_KIND, asset_id)
        record: Record = json.loads(row[0])
        if with_blob and row[1] is not None:
            record["blob"] = row[1]
        return record

    def count(self, fields: Mapping[str, Any]) -> int:
        where, params = self._where(fields)
        with self._db.errors():
            return int(self._db.conn().execute(f"SELECT COUNT(*) FROM assets{where}", params).fetchone()[0])

    @staticmethod
    def _where(fields: Mapping[str, Any]) -> tuple[str, list[Any]]:
        terms, params = [], []
        for key, value in fields.items():
            column = _COLUMNS.get(key)
            if column is not None:
                terms.append(f"{column} = ?")
            else:
                terms.append("json_extract(doc, ?) = ?")
                params.append(f'$."{key}"')
            params.append(value)
        return (" WHERE " + " AND ".join(terms) if terms else ""), params

    def search(self, name: str | None, version: str | None, page: Page = DEFAULT_ASSET_PAGE) -> list[Record]:
        keys = check_page(page)
        fields = {k: v for k, v in (("name", name), ("version", version)) if v is not None}
        where, params = self._where(fields)
        order = []
        for key in keys:
            direction = "DESC" if key.descending else "ASC"
            column = _COLUMNS.get(key.field)
            if column is None:
                params.append(f'$."{key.field}"')
                column = "json_extract(doc, ?)"
            order.append(f"{column} {direction} NULLS LAST")
        order.append(f"id {'DESC' if keys[0].descending else 'ASC'}")
        sql = f"SELECT doc FROM assets{where} ORDER BY {', '.join(order)} LIMIT ? OFFSET ?"
        with self._db.errors():
            rows = self._db.conn().execute(sql, [*params, page.size, page.from_]).fetchall()
        return [json.loads(row[0]) for row in rows]

    def delete(self, asset_id: str) -> bool:
        with self._db.write() as conn:
            return conn.execute("DELETE FROM assets WHERE id = ?", (asset_id,)).rowcount > 0

    def close(self) -> None:
        """Close every connection (all threads); later calls raise StoreError."""
        self._db.close()

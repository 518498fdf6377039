"""The kept versions of template files (notifier_template_versions), and what the daemon loaded.

The browser editor (notifier.tools.editor) writes a file in templates/ and keeps the version
here, with who saved it and when; a file changed on disk outside the editor is kept too when the
editor next sees it, so a revert can always go back to it. The daemon publishes the digest of the
templates it loaded (notifier_state, `templates.*`, written by run/pipeline.py); `loaded_templates`
reads that back for the gallery and the editor.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from notifier.core.timing import as_utc
from notifier.db.store.base import STATE, TEMPLATE_VERSIONS

ON_DISK = "(on disk)"  # the author of a change found on disk, made outside the editor


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateVersion:
    """One kept version of one file."""

    id: int
    number: int  # 1, 2, 3, ... per file, in the order they were kept
    path: str
    content: str
    sha256: str
    author: str
    note: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedTemplates:
    """What the running daemon published about the templates it loaded (start or last good reload)."""

    digest: str
    files: dict[str, str]  # path relative to templates/ -> sha256 of its content
    at: datetime | None


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def keep_version(conn: sa.Connection, path: str, content: str, author: str, note: str, now: datetime) -> int:
    """Keep one version of `path`; its id."""
    values = {"path": path, "content": content, "sha256": content_hash(content), "author": author}
    result = conn.execute(TEMPLATE_VERSIONS.insert().values(**values, note=note, created_at=now))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def versions_of(conn: sa.Connection, path: str) -> list[TemplateVersion]:
    """Every kept version of `path`, oldest first."""
    t = TEMPLATE_VERSIONS.c
    rows = conn.execute(sa.select(TEMPLATE_VERSIONS).where(t.path == path).order_by(t.id)).mappings()
    return [
        TemplateVersion(
            id=row["id"],
            number=number,
            path=row["path"],
            content=row["content"],
            sha256=row["sha256"],
            author=row["author"],
            note=row["note"],
            created_at=as_utc(row["created_at"]),
        )
        for number, row in enumerate(rows, start=1)
    ]


def edited_paths(conn: sa.Connection) -> dict[str, int]:
    """Each file with kept versions, and how many."""
    t = TEMPLATE_VERSIONS.c
    rows = conn.execute(sa.select(t.path, sa.func.count()).group_by(t.path))
    return {path: count for path, count in rows}


def loaded_templates(conn: sa.Connection) -> LoadedTemplates | None:
    """What the daemon said it loaded, or None if no daemon has published it yet."""
    keys = ("templates.digest", "templates.files")
    rows = conn.execute(
        sa.select(STATE.c.key, STATE.c.value, STATE.c.updated_at).where(STATE.c.key.in_(keys))
    )
    found = {row.key: (row.value, as_utc(row.updated_at)) for row in rows}
    if "templates.digest" not in found:
        return None
    try:
        files = json.loads(found.get("templates.files", ("{}", None))[0])
    except ValueError:
        files = {}
    digest, at = found["templates.digest"]
    return LoadedTemplates(digest=digest, files=files if isinstance(files, dict) else {}, at=at)


def versions_table_exists(conn: sa.Connection) -> bool:
    """False before `notifier init-db` has made (or upgraded to) the versions table."""
    return sa.inspect(conn).has_table(TEMPLATE_VERSIONS.name)

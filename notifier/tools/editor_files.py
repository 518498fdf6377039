"""The template files the browser editor may change, and what happens to them on the way to disk.

An edit is tried on a candidate folder first: the templates folder as it is, with the one file
replaced (symbolic links to every other file, so making it is cheap). The preview renders from
it; a save runs THE validation on it (config/validate.py, what `check` and the daemon's reload
run) and writes the real file only when that finds no problem, atomically, so the daemon's reload
never reads half a file. Every saved content is kept in the store (db/store/template_versions.py),
and so is a change made on disk outside the editor, the next time the editor saves that file.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from notifier.config.live import template_files, templates_digest
from notifier.config.shipped import shipped
from notifier.config.validate import validate
from notifier.db.store import template_versions as kept
from notifier.db.store.template_versions import TemplateVersion, content_hash

# A message file of a template folder, or a shared file at the top (_layout.html, _style.css, ...).
EDITABLE = re.compile(
    r"(?:[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9-]*\.(?:subject\.txt|html|txt))"
    r"|(?:_[A-Za-z0-9][A-Za-z0-9_.-]*\.(?:html|txt|css))"
)
MAX_TEMPLATE = 256 * 1024  # characters; a template bigger than this is a mistake


def shipped_templates() -> Path | None:
    """The templates notifier ships (the defaults a file can be reverted to), where installed."""
    try:
        return shipped("templates")
    except FileNotFoundError:
        return None


def editable_files(templates: Path) -> list[str]:
    """The files of the templates folder the editor can change, shared ones first."""
    found = [path for path in template_files(templates) if EDITABLE.fullmatch(path)]
    return sorted(found, key=lambda path: ("/" in path, path))


def is_editable(templates: Path, path: str) -> bool:
    return bool(EDITABLE.fullmatch(path)) and ".." not in path and (templates / path).is_file()


def read(templates: Path, path: str) -> str:
    return (templates / path).read_text(encoding="utf-8")


def shipped_default(templates: Path, path: str) -> str | None:
    """The shipped content of `path`, or None (not shipped, or the templates in use are the shipped ones)."""
    shipped = shipped_templates()
    if shipped is None or shipped == templates.resolve() or not (shipped / path).is_file():
        return None
    return (shipped / path).read_text(encoding="utf-8")


@contextlib.contextmanager
def candidate(templates: Path, path: str, content: str) -> Iterator[Path]:
    """The templates folder with `path` holding `content`, as a throw-away folder of the same name."""
    source = templates.resolve()
    with tempfile.TemporaryDirectory(prefix="notifier-edit-") as scratch:
        root = Path(scratch) / source.name
        for folder, subfolders, files in os.walk(source):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            here = root / Path(folder).relative_to(source)
            here.mkdir(parents=True, exist_ok=True)
            for name in files:
                os.symlink(Path(folder) / name, here / name)
        target = root / path
        target.unlink(missing_ok=True)  # a link to the real file: never write through it
        target.write_bytes(content.encode("utf-8"))
        yield root


def problems_with(
    rules: Path, templates: Path, path: str, content: str, capture: Path | None = None
) -> list[str]:
    """What THE validation says against the folder with this edit; [] means `check` accepts it."""
    with candidate(templates, path, content) as root:
        found = validate(rules, root, capture=capture)
        problems = [str(problem).replace(str(root), str(templates)) for problem in found.problems]
        if found.rules is None and not problems:
            problems.append(f"{rules}: the rules cannot be read")
        return problems


def write(templates: Path, path: str, content: str) -> None:
    """Replace the file in one step (a reload sees the old file or the new one, never half of one)."""
    target = templates / path
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    temporary.write_bytes(content.encode("utf-8"))
    os.replace(temporary, target)


def save(
    engine: sa.Engine, templates: Path, path: str, content: str, *, author: str, note: str, now: datetime
) -> int:
    """Write `content` to `path` and keep it, with the file as it was found if that was never kept;
    the new version's number."""
    before = read(templates, path)
    with engine.begin() as conn:
        versions = kept.versions_of(conn, path)
        if not versions or versions[-1].sha256 != content_hash(before):
            found = "as found before the first edit here" if not versions else "changed on disk, not here"
            kept.keep_version(conn, path, before, kept.ON_DISK, found, now)
        kept.keep_version(conn, path, content, author, note, now)
        write(templates, path, content)  # last: a failed write rolls the versions back
        return len(kept.versions_of(conn, path))


@dataclass(frozen=True, slots=True)
class FileState:
    """One file: its kept versions and which of them the running daemon uses."""

    content: str
    versions: list[TemplateVersion]
    default: str | None
    loaded_sha: str | None  # of the file the daemon loaded; None if no daemon said
    loaded_at: datetime | None

    def daemon_uses(self) -> str:
        """Which content the running daemon uses, in words."""
        if self.loaded_sha is None:
            return "No running daemon has said which templates it uses yet (it does at start and reload)."
        when = f" (loaded {self.loaded_at:%Y-%m-%d %H:%M:%S} UTC)" if self.loaded_at else ""
        matches = [v for v in self.versions if v.sha256 == self.loaded_sha]
        if matches:
            which = f"version {matches[-1].number}, saved by {matches[-1].author}"
        elif self.default is not None and content_hash(self.default) == self.loaded_sha:
            which = "the shipped default"
        else:
            which = "a version not kept here"
        lag = "" if content_hash(self.content) == self.loaded_sha else "; not yet what is on disk"
        return f"The running daemon uses {which}{when}{lag}."

    def uses(self, version: TemplateVersion) -> bool:
        return version.sha256 == self.loaded_sha


def file_state(engine: sa.Engine, templates: Path, path: str) -> FileState:
    with engine.connect() as conn:
        versions = kept.versions_of(conn, path)
        loaded = kept.loaded_templates(conn)
    sha = loaded.files.get(path) if loaded else None
    at = loaded.at if loaded else None
    return FileState(read(templates, path), versions, shipped_default(templates, path), sha, at)


def daemon_says(engine: sa.Engine, templates: Path) -> str:
    """One sentence for the gallery: which templates the running daemon uses, against those on disk."""
    try:
        with engine.connect() as conn:
            loaded = kept.loaded_templates(conn)
    except sa.exc.SQLAlchemyError:  # no notifier tables yet, or the database is down
        return "Which templates the daemon uses is not known: the database cannot be read."
    if loaded is None:
        return "No running daemon has said which templates it uses yet (it does at start and at each reload)."
    on_disk = templates_digest(template_files(templates))
    when = f"loaded {loaded.at:%Y-%m-%d %H:%M:%S} UTC" if loaded.at else "loaded"
    if on_disk == loaded.digest:
        return f"The running daemon uses templates version {loaded.digest} ({when}): what is on disk."
    return (
        f"The running daemon uses templates version {loaded.digest} ({when}); on disk now: {on_disk}. "
        "It picks up a saved edit within its poll interval (notifier status shows a refused reload)."
    )

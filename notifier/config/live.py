"""The rules and templates in force: loaded once at start, watched, reloaded when edited.

What is taken is exactly what `notifier check` accepts (config/validate.py: the rules, the
syntax, every template rendered in every locale within the bounds of a render, the contract
and each condition checked statically). A bad file at start-up is fatal (the daemon must not
run on rules nobody checked). A bad edit while running is refused and logged, and the last
good rules and templates stay in force. Either way the outcome is published for `notifier status`.
`accepted` is the digest of the files in force (config/validate.py): a sending process given the
main process's takes files with that digest without checking them again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from notifier.config.validate import accept, load_accepted, load_checked
from notifier.errors import RulesError

__all__ = ["LiveConfig", "ReloadOutcome", "load_checked", "template_files", "templates_digest"]

log = logging.getLogger("notifier.config.live")


def _fingerprint(paths: Iterator[Path]) -> tuple[tuple[str, int, int], ...]:
    items = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        items.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(items))


def template_files(templates: Path) -> dict[str, str]:
    """Each file in the templates folder ('order_confirmation/en.html') and the sha256 of its bytes:
    what the daemon publishes as loaded, and what the editor matches its kept versions against."""
    found: dict[str, str] = {}
    for path in sorted(templates.rglob("*")) if templates.is_dir() else ():
        relative = path.relative_to(templates)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            try:
                found[relative.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                continue
    return found


def templates_digest(files: dict[str, str]) -> str:
    """One short digest of the whole folder: the same files with the same contents, the same digest."""
    listing = "".join(f"{path}\0{digest}\n" for path, digest in sorted(files.items()))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()[:12]


@dataclass(slots=True)
class ReloadOutcome:
    changed: bool
    error: str | None = None


class LiveConfig:
    """Holds the last good RuleSet and Renderer; `reload_if_changed()` picks up edits."""

    def __init__(
        self, rules_path: Path, templates: Path, capture: Path | None = None, *, accepted: str = ""
    ) -> None:
        """`capture`: the capture mapping, whose declared event types rules may name.
        `accepted`: the digest of the files the main process checked; files with another
        digest (or none given) are checked here, RulesError if they are not valid."""
        self.rules_path = rules_path
        self.templates = templates
        self.capture = capture
        # Read before the templates are checked: a file saved in between changes the fingerprint,
        # so the next cycle reloads and publishes again (never a digest newer than what is loaded).
        self.template_files = template_files(templates)
        self.rules, self.renderer, self.accepted = (
            load_accepted(rules_path, templates, accepted, capture=capture)
            or accept(rules_path, templates, capture=capture)
        )
        self._seen = self._current_fingerprint()
        self.last_error: str | None = None

    def _current_fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        files = [self.rules_path, *([self.capture] if self.capture is not None else [])]
        if self.templates.is_dir():
            files.extend(p for p in self.templates.rglob("*") if p.is_file())
        return _fingerprint(iter(files))

    def reload_if_changed(self) -> ReloadOutcome:
        """Reload when a file changed; keep the last good config if the new one is bad."""
        current = self._current_fingerprint()
        if current == self._seen:
            return ReloadOutcome(changed=False)
        self._seen = current
        files = template_files(self.templates)
        try:
            rules, renderer, accepted = accept(self.rules_path, self.templates, capture=self.capture)
        except RulesError as exc:
            self.last_error = str(exc)
            log.error(
                "rules or templates changed but are not valid; keeping the last good ones (rules %s):\n%s",
                self.rules.digest,
                exc,
            )
            return ReloadOutcome(changed=True, error=str(exc))
        self.rules, self.renderer, self.accepted, self.last_error = rules, renderer, accepted, None
        self.template_files = files
        log.info(
            "reloaded %s (%d rules, digest %s) and %s",
            self.rules_path,
            len(rules.rules),
            rules.digest,
            self.templates,
        )
        return ReloadOutcome(changed=True)

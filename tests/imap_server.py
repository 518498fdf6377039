"""A minimal IMAP4rev1 server for tests (not notifier's code): one user, one INBOX, what
`imaplib` needs to log in, select, search unseen, fetch, flag, expunge, close and log out.

    with ImapServer(user="u", password="p", messages=[b"..."]) as imap:
        imap.port, imap.flags, imap.expunged
"""

from __future__ import annotations

import re
import socketserver
import threading
from types import TracebackType

__all__ = ["ImapServer"]

_COMMAND = re.compile(rb"^(\S+) (?:UID )?(\S+)(?: (.*))?$", re.IGNORECASE)


class _Session(socketserver.StreamRequestHandler):
    server: _Server

    def _send(self, line: str | bytes) -> None:
        self.wfile.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def handle(self) -> None:
        self._send("* OK test IMAP ready")
        while raw := self.rfile.readline():
            found = _COMMAND.match(raw.rstrip(b"\r\n"))
            if found is None:
                self._send("* BAD what")
                continue
            tag, name, rest = found[1].decode(), found[2].decode().upper(), (found[3] or b"").decode()
            if not getattr(self, f"_{name.lower()}", self._unknown)(tag, rest):
                return

    def _unknown(self, tag: str, rest: str) -> bool:
        self._send(f"{tag} BAD unknown command")
        return True

    def _capability(self, tag: str, rest: str) -> bool:
        self._send("* CAPABILITY IMAP4rev1")
        self._send(f"{tag} OK done")
        return True

    def _login(self, tag: str, rest: str) -> bool:
        user, password = rest.split(" ", 1)
        ok = (user.strip('"'), password.strip('"')) == (self.server.owner.user, self.server.owner.password)
        self._send(f"{tag} OK logged in" if ok else f"{tag} NO [AUTHENTICATIONFAILED] wrong password")
        return True

    def _select(self, tag: str, rest: str) -> bool:
        if rest.strip('"').upper() != "INBOX":
            self._send(f"{tag} NO no such mailbox")
            return True
        self._send(f"* {len(self.server.owner.messages)} EXISTS")
        self._send("* FLAGS (\\Seen \\Deleted)")
        self._send(f"{tag} OK [READ-WRITE] SELECT completed")
        return True

    def _search(self, tag: str, rest: str) -> bool:
        owner = self.server.owner
        unseen = [str(uid) for uid in owner.messages if not owner.flags.get(uid)]
        self._send("* SEARCH" + "".join(f" {uid}" for uid in unseen))
        self._send(f"{tag} OK SEARCH completed")
        return True

    def _fetch(self, tag: str, rest: str) -> bool:
        uid = int(rest.split(" ", 1)[0])
        data = self.server.owner.messages[uid]
        self.wfile.write(f"* {uid} FETCH (UID {uid} BODY[] {{{len(data)}}}\r\n".encode() + data + b")\r\n")
        self._send(f"{tag} OK FETCH completed")
        return True

    def _store(self, tag: str, rest: str) -> bool:
        uid_text, _, flags = rest.split(" ", 2)
        uid = int(uid_text)
        self.server.owner.flags.setdefault(uid, set()).update(flags.strip("()").split())
        self._send(f"* {uid} FETCH (FLAGS ({' '.join(sorted(self.server.owner.flags[uid]))}))")
        self._send(f"{tag} OK STORE completed")
        return True

    def _expunge(self, tag: str, rest: str) -> bool:
        owner = self.server.owner
        for uid in [u for u in owner.messages if "\\Deleted" in owner.flags.get(u, set())]:
            del owner.messages[uid]
            owner.expunged.append(uid)
            self._send(f"* {uid} EXPUNGE")
        self._send(f"{tag} OK EXPUNGE completed")
        return True

    def _close(self, tag: str, rest: str) -> bool:
        self._send(f"{tag} OK CLOSE completed")
        return True

    def _logout(self, tag: str, rest: str) -> bool:
        self._send("* BYE")
        self._send(f"{tag} OK LOGOUT completed")
        return False


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ImapServer


class ImapServer:
    def __init__(self, *, user: str, password: str, messages: list[bytes]) -> None:
        self.user = user
        self.password = password
        self.messages = {number: data for number, data in enumerate(messages, start=1)}
        self.flags: dict[int, set[str]] = {}
        self.expunged: list[int] = []
        self._server = _Server(("127.0.0.1", 0), _Session)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ImapServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

"""A fast local SMTP sink for the benchmarks, and a way to measure its own ceiling.

    .venv/bin/python bench/sink.py [--port 0] [--control-port 0]

A lean asyncio Protocol server on 127.0.0.1 that speaks just enough ESMTP for aiosmtplib,
smtplib and Django's SMTP backend: 220 greeting, EHLO (PIPELINING, 8BITMIME, SIZE,
SMTPUTF8), HELO, MAIL, RCPT, DATA (read up to CRLF.CRLF), RSET, NOOP, QUIT. Pipelined
commands (several in one read) are answered in order with one write. It stores nothing: it
counts accepted messages and, while recording is on, keeps per message the arrival time
(time.time() at the end of DATA) and the Message-ID header.

It runs in its own process (`Sink` starts it with subprocess), so its CPU never shares a GIL
with the program under test. On start it prints one JSON line with its two ports. The
control port answers one-line commands with one JSON line: `count`, `records` (the
[arrival, message_id] pairs so far), `record on|off`, `reset` (count and records to zero).

`blast()` measures the ceiling: several raw connections each send pre-built ~5 KB messages,
a window of transactions written at once (commands and body pipelined), and count replies.
`blast_aiosmtplib()` sends the same messages through aiosmtplib (the client notifier uses),
one transaction at a time per connection: the most any aiosmtplib sender in one Python
process can expect from this sink.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)
_END = b"\r\n.\r\n"
_EHLO = (b"250-sink.local\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
         b"250 SIZE 104857600\r\n")


class Stats:
    def __init__(self) -> None:
        self.count = 0
        self.recording = False
        self.records: list[tuple[float, str]] = []

    def accept(self, body: bytes) -> None:
        self.count += 1
        if self.recording:
            head = body[: body.find(b"\r\n\r\n") + 1 or 8192]
            match = _MESSAGE_ID.search(head)
            self.records.append((time.time(), match.group(1).decode("ascii", "replace") if match else ""))


class SmtpSession(asyncio.Protocol):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.buffer = bytearray()
        self.in_data = False
        self.scan_from = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.write(b"220 sink.local ESMTP ready\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        closing = False
        while self.buffer and not closing:
            if self.in_data:
                if self.buffer.startswith(b".\r\n"):  # empty body: the terminator comes first
                    end, body_end = 0, 0
                else:
                    end = self.buffer.find(_END, max(self.scan_from - 4, 0))
                    body_end = end + 2
                if end < 0:
                    self.scan_from = len(self.buffer)
                    break
                self.stats.accept(bytes(self.buffer[:body_end]))  # dot-stuffing left as is: count only
                del self.buffer[: body_end + 3]
                self.in_data, self.scan_from = False, 0
                replies.append(b"250 2.0.0 Ok: queued\r\n")
                continue
            eol = self.buffer.find(b"\r\n")
            if eol < 0:
                break
            line = bytes(self.buffer[:eol])
            del self.buffer[: eol + 2]
            verb = line[:4].upper()
            if verb == b"MAIL" or verb == b"RCPT" or verb == b"RSET" or verb == b"NOOP":
                replies.append(b"250 2.0.0 Ok\r\n")
            elif verb == b"DATA":
                self.in_data, self.scan_from = True, 0
                replies.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"EHLO":
                replies.append(_EHLO)
            elif verb == b"HELO":
                replies.append(b"250 sink.local\r\n")
            elif verb == b"QUIT":
                replies.append(b"221 2.0.0 Bye\r\n")
                closing = True
            else:
                replies.append(b"502 5.5.2 Command not recognized\r\n")
        assert self.transport is not None
        if replies:
            self.transport.write(b"".join(replies))
        if closing:
            self.transport.close()


async def _control(stats: Stats, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := (await reader.readline()).decode().strip():
        answer: Any
        if line == "count":
            answer = {"count": stats.count}
        elif line == "records":
            answer = {"count": stats.count, "records": stats.records}
        elif line in ("record on", "record off"):
            stats.recording = line.endswith("on")
            answer = {"recording": stats.recording}
        elif line == "reset":
            stats.count, stats.records = 0, []
            answer = {"count": 0}
        else:
            answer = {"error": f"unknown command {line!r}"}
        writer.write(json.dumps(answer).encode() + b"\n")
        await writer.drain()
    writer.close()


async def serve(port: int, control_port: int) -> None:
    stats = Stats()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(lambda: SmtpSession(stats), "127.0.0.1", port, backlog=512)
    control = await asyncio.start_server(lambda r, w: _control(stats, r, w), "127.0.0.1", control_port)
    ports = {"port": smtp.sockets[0].getsockname()[1], "control_port": control.sockets[0].getsockname()[1]}
    print(json.dumps(ports), flush=True)
    await asyncio.gather(smtp.serve_forever(), control.serve_forever())


class Sink:
    """The sink in a child process, and a client for its control port."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        ports = json.loads(self.process.stdout.readline())
        self.port: int = ports["port"]
        self.control = socket.create_connection(("127.0.0.1", ports["control_port"]), timeout=60)
        self.replies = self.control.makefile("r", encoding="utf-8")

    def ask(self, command: str) -> dict[str, Any]:
        self.control.sendall(command.encode() + b"\n")
        answer: dict[str, Any] = json.loads(self.replies.readline())
        return answer

    def count(self) -> int:
        return int(self.ask("count")["count"])

    def reset(self) -> None:
        self.ask("reset")

    def records(self) -> list[tuple[float, str]]:
        return [(float(t), str(m)) for t, m in self.ask("records")["records"]]

    def close(self) -> None:
        self.control.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def sample_message(index: int, size: int = 5000) -> bytes:
    head = (f"From: Blossom & Co <care@blossom.example>\r\nTo: c{index}@example.com\r\n"
            f"Subject: Order {index} confirmed\r\nMessage-ID: <blast{index}@blossom.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
    line = "Thank you for your order; our florists are getting it ready.........\r\n"
    return (head + line * (size // len(line))).encode()


async def _blast_connection(port: int, messages: list[bytes], window: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"EHLO blaster\r\n")
    while not (await reader.readline()).startswith(b"250 "):
        pass
    done = 0
    for start in range(0, len(messages), window):
        chunk = messages[start : start + window]
        writer.write(b"".join(
            b"MAIL FROM:<care@blossom.example>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n" + m + b"\r\n.\r\n"
            for m in chunk
        ))
        for _ in range(4 * len(chunk)):
            reply = await reader.readline()
            if reply[:1] not in (b"2", b"3"):
                raise RuntimeError(f"sink answered {reply!r}")
        done += len(chunk)
    writer.write(b"QUIT\r\n")
    await reader.readline()
    writer.close()
    return done


def blast(port: int, count: int, connections: int = 4, window: int = 16) -> float:
    """Messages per second the sink accepts from `connections` pipelining raw clients."""
    prebuilt = [sample_message(i) for i in range(1000)]
    per = count // connections

    async def main() -> int:
        jobs = [
            _blast_connection(port, [prebuilt[(c * per + i) % 1000] for i in range(per)], window)
            for c in range(connections)
        ]
        return sum(await asyncio.gather(*jobs))

    started = time.perf_counter()
    sent = asyncio.run(main())
    return sent / (time.perf_counter() - started)


def blast_aiosmtplib(port: int, count: int, connections: int = 4) -> float:
    """Messages per second 4 aiosmtplib clients in this process reach (one at a time each)."""
    import aiosmtplib

    prebuilt = [sample_message(i) for i in range(1000)]

    async def one(offset: int) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
            for i in range(count // connections):
                message = prebuilt[(offset + i) % 1000]
                await client.sendmail("care@blossom.example", ["c@example.com"], message)

    async def main() -> None:
        await asyncio.gather(*(one(c * 250) for c in range(connections)))

    started = time.perf_counter()
    asyncio.run(main())
    return (count // connections) * connections / (time.perf_counter() - started)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.control_port))
    except KeyboardInterrupt:
        pass

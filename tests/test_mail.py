"""notifier.compose.mail: every message is parsed back with the stdlib parser and must say
exactly what went in."""

from __future__ import annotations

import base64
import email
import email.policy
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.compose.mail import Envelope, Rendered, build_message, make_message_id
from notifier.core.addresses import InvalidAddress, check_address, parse_from

DATE = datetime(2025, 2, 10, 9, 30, 15, tzinfo=UTC)
UNSUBSCRIBE = "<https://blossom.example/u/0123456789abcdef0123456789abcdef>"
CORE_FIELDS = [
    "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Auto-Submitted"
]

HTML = (
    "<html><body>\n<p>親愛的 林美玲，您的玫瑰 🌹 已經上車了。</p>\n"  # noqa: RUF001 - Chinese punctuation
    + "<p>" + "A very long line of text without any break at all. " * 40 + "</p>\n"
    + "From here on, the truck takes over.\n.\n</body></html>\n"
)
TEXT = "Dear Ms Lin,\nFrom the shop: your roses 🌹 are on the truck.\n.\n林美玲 你好\n" + "x" * 500


def envelope(**changes: object) -> Envelope:
    base = Envelope(
        from_header="Blossom & Co <care@blossom.example>",
        to_name="Ms Lin",
        to_address="lin@example.com",
        message_id=make_message_id("order.shipped:order:1042", "blossom.example"),
        date=DATE,
        extra_headers=(
            ("List-Unsubscribe", UNSUBSCRIBE),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
    )
    return replace(base, **changes)


def rendered(**changes: str) -> Rendered:
    base = Rendered(subject="Your order 1042 is on its way", html=HTML, text=TEXT)
    return replace(base, **changes)


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def header_lines(data: bytes) -> list[str]:
    """The raw header section, one physical line per item, without CRLF."""
    return data.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")


def field_lines(data: bytes) -> dict[str, list[str]]:
    """Each header's physical lines (the first and its continuations), by field name."""
    fields: dict[str, list[str]] = {}
    current: list[str] = []
    for line in header_lines(data):
        if not line.startswith((" ", "\t")):
            current = fields.setdefault(line.split(":", 1)[0], [])
        current.append(line)
    return fields


def raw_field(data: bytes, name: str) -> str:
    """One header's raw value, unfolded (CRLF removed, the folding space kept)."""
    unfolded = re.sub(r"\r\n(?=[ \t])", "", data.split(b"\r\n\r\n", 1)[0].decode("ascii"))
    values = [line.split(":", 1)[1] for line in unfolded.split("\r\n")
              if line.split(":", 1)[0].lower() == name.lower()]
    assert len(values) == 1
    return values[0].strip()


def decode_encoded_words(raw: str) -> str:
    """RFC 2047 6.2 reading of a run of base64 encoded-words: whitespace between them is
    not text. Used where the stdlib parser does not follow 6.2 (CPython gh-128110)."""
    words = re.findall(r"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=", raw)
    assert words
    return b"".join(base64.b64decode(word) for word in words).decode("utf-8")


def assert_encoded_words_stand_alone(data: bytes) -> None:
    """RFC 2047 5: each encoded-word holds whole characters and decodes on its own."""
    for word in re.findall(r"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=", header_lines_text(data)):
        base64.b64decode(word).decode("utf-8")  # raises if a character was cut in two


def header_lines_text(data: bytes) -> str:
    return "\r\n".join(header_lines(data))


def expected_clean(value: str) -> str:
    """What a header keeps of a database value: controls and line breaks are a space,
    runs of spaces one space, no space at either end."""
    kept = "".join(" " if unicodedata.category(ch) in {"Cc", "Zl", "Zp", "Cs"} else ch
                   for ch in value)
    return " ".join(word for word in kept.split(" ") if word)


def display_name(data: bytes, message: EmailMessage, field: str) -> str:
    """The display name as a reader following RFC 2047 sees it.

    For encoded names the stdlib parser is checked too, but only up to whitespace: in
    display names it keeps the space between encoded-words (CPython gh-128110) and folds
    Unicode whitespace that follows a space into that space.
    """
    raw = raw_field(data, field)
    stdlib_name = message[field].addresses[0].display_name
    if "=?utf-8?b?" not in raw:
        return stdlib_name
    name = decode_encoded_words(raw.rsplit("<", 1)[0])
    assert "".join(stdlib_name.split()) == "".join(name.split())
    return name


# --- the whole message --------------------------------------------------------------


def test_every_header_and_both_parts_round_trip() -> None:
    env = envelope(to_name="林美玲", from_header="花店 <care@blossom.example>")
    data = build_message(rendered(subject="您的订单 1042 已发货 🌹"), env)
    message = parse(data)

    assert message.keys() == [*CORE_FIELDS, "List-Unsubscribe", "List-Unsubscribe-Post"]
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("花店", "care@blossom.example")
    (recipient,) = message["To"].addresses
    assert (recipient.display_name, recipient.addr_spec) == ("林美玲", "lin@example.com")
    assert message["Subject"] == "您的订单 1042 已发货 🌹"
    assert message["Date"].datetime == DATE
    assert message["Date"] == "Mon, 10 Feb 2025 09:30:15 +0000"
    assert message["Message-ID"] == env.message_id
    assert message["MIME-Version"] == "1.0"
    assert message["List-Unsubscribe"] == UNSUBSCRIBE
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain, html = message.iter_parts()
    assert plain.get_content() == TEXT
    assert html.get_content() == HTML
    assert message.defects == [] and plain.defects == [] and html.defects == []


def test_multipart_alternative_with_plain_first_and_html_last() -> None:
    data = build_message(rendered(), envelope())
    message = parse(data)

    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "base64"
        assert not part.is_multipart()
    assert message.get_body(preferencelist=("html",)) is parts[1]
    assert message.get_body(preferencelist=("plain",)) is parts[0]
    # The boundary shows up only as the three delimiters.
    boundary = message.get_boundary()
    assert boundary and data.count(boundary.encode()) == 4  # Content-Type + 3 delimiters
    # A character base64 never produces, so no body can ever contain the boundary.
    assert re.search(r"[^A-Za-z0-9+/=]", boundary)
    assert data.endswith(f"\r\n--{boundary}--\r\n".encode())


def test_lines_are_crlf_and_short() -> None:
    data = build_message(rendered(subject="Your order 1042 " * 12), envelope())

    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 78 for line in header_lines(data))
    body_lines = data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert max(len(line) for line in body_lines) == 76


@pytest.mark.parametrize("body", ["", ".", "From the shop\n", "\n.\n", "🌹" * 1000, "tab\there",
                                  "a" * 57, "a" * 58])
def test_bodies_decode_to_exactly_what_was_given(body: str) -> None:
    message = parse(build_message(rendered(text=body, html=body), envelope()))

    plain, html = message.iter_parts()
    assert plain.get_content() == body
    assert html.get_content() == body


@pytest.mark.parametrize(("body", "expected"), [
    ("\r\n.\r\n", "\n.\n"),
    ("line\rwith a lone carriage return", "line\nwith a lone carriage return"),
    ("a\x00b\x07c\x1bd\x7fe\x9bf", "abcdef"),
    ("one\u2028two\u2029three\x85four", "one\ntwo\nthree\nfour"),
])
def test_bodies_lose_control_characters_and_separators_become_line_breaks(body: str, expected: str) -> None:
    message = parse(build_message(rendered(text=body, html=f"<p>{body}</p>"), envelope()))

    plain, html = message.iter_parts()
    assert plain.get_content() == expected
    assert html.get_content() == f"<p>{expected}</p>"


def test_same_input_gives_the_same_bytes() -> None:
    first = build_message(rendered(), envelope())

    assert build_message(rendered(), envelope()) == first
    other = build_message(rendered(), envelope(message_id="<other@blossom.example>"))
    assert parse(other).get_boundary() != parse(first).get_boundary()


def test_date_keeps_its_offset() -> None:
    taipei = DATE.astimezone(timezone(timedelta(hours=8)))
    message = parse(build_message(rendered(), envelope(date=taipei)))

    assert message["Date"] == "Mon, 10 Feb 2025 17:30:15 +0800"
    assert message["Date"].datetime == DATE


def test_the_same_instant_with_another_offset_keeps_that_offset() -> None:
    # The formatted Date is cached; equal instants with different offsets must not share it.
    in_utc = parse(build_message(rendered(), envelope(date=DATE)))
    in_taipei = parse(build_message(rendered(), envelope(date=DATE.astimezone(timezone(timedelta(hours=8))))))
    in_utc_again = parse(build_message(rendered(), envelope(date=DATE)))

    assert in_utc["Date"] == in_utc_again["Date"] == "Mon, 10 Feb 2025 09:30:15 +0000"
    assert in_taipei["Date"] == "Mon, 10 Feb 2025 17:30:15 +0800"


def test_naive_date_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_message(rendered(), envelope(date=datetime(2025, 2, 10, 9, 30)))


@pytest.mark.parametrize("message_id", ["", "abc@x.example", "<abc>", "<a b@x.example>",
                                        "<a@x.example>\r\nBcc: evil@x.example"])
def test_malformed_message_id_is_refused(message_id: str) -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        build_message(rendered(), envelope(message_id=message_id))


def test_unusable_addresses_are_refused() -> None:
    with pytest.raises(InvalidAddress, match="has no domain"):
        build_message(rendered(), envelope(to_address="lin@"))
    with pytest.raises(InvalidAddress, match="has no domain"):
        build_message(rendered(), envelope(from_header="Blossom <care@>"))


# --- Message-ID ---------------------------------------------------------------------


def test_message_id_is_stable_per_key() -> None:
    first = make_message_id("order.shipped:order:1042", "blossom.example")

    assert make_message_id("order.shipped:order:1042", "blossom.example") == first
    assert make_message_id("order.shipped:order:1043", "blossom.example") != first
    assert make_message_id("order.shipped:order:1042", "other.example") != first
    assert re.fullmatch(r"<[0-9a-f]{32}@blossom\.example>", first)


def test_message_id_carries_the_database_id() -> None:
    key = "order.confirmed:order:1044"
    ours = make_message_id(key, "blossom.example", "3f9a0c1d2e4b5a69")

    assert re.fullmatch(r"<[0-9a-f]{32}\.3f9a0c1d2e4b5a69@blossom\.example>", ours)
    assert make_message_id(key, "blossom.example", "3f9a0c1d2e4b5a69") == ours
    assert make_message_id(key, "blossom.example", "0000000000000001") != ours


def test_message_id_domain_is_ascii_and_checked() -> None:
    assert make_message_id("k", "花店.example").endswith("@xn--hxto71f.example>")
    with pytest.raises(InvalidAddress):
        make_message_id("k", "bad domain.example")


@given(st.text())
def test_any_key_gives_a_usable_message_id(key: str) -> None:
    message_id = make_message_id(key, "blossom.example")

    assert re.fullmatch(r"<[0-9a-f]{32}@blossom\.example>", message_id)
    assert make_message_id(key, "blossom.example") == message_id


# --- names and subjects -------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "林美玲", "陳大文", "Ms 林美玲", "林美玲 (VIP)", "Zoë Ångström", "🌹 Rose", "李",
])
def test_non_ascii_names_round_trip(name: str) -> None:
    data = build_message(rendered(), envelope(to_name=name, from_header=f"{name} <care@x.example>"))
    message = parse(data)

    for field, address in (("To", "lin@example.com"), ("From", "care@x.example")):
        (mailbox,) = message[field].addresses
        assert (mailbox.display_name, mailbox.addr_spec) == (name, address)
    assert "=?utf-8?b?" in raw_field(data, "To")


def test_long_chinese_name_is_split_into_short_encoded_words() -> None:
    name = "上海市浦东新区花卉贸易有限公司客户服务部林美玲女士收"
    data = build_message(rendered(), envelope(to_name=name))

    raw = raw_field(data, "To")
    assert raw.count("=?utf-8?b?") > 1
    assert all(len(word) <= 75 for word in re.findall(r"=\?\S*?\?=", raw))
    assert all(len(line) <= 78 for line in header_lines(data))
    assert decode_encoded_words(raw.rsplit("<", 1)[0]) == name
    assert_encoded_words_stand_alone(data)
    (recipient,) = parse(data)["To"].addresses
    assert recipient.addr_spec == "lin@example.com"


@pytest.mark.parametrize("subject", [
    "您的订单 1042 已发货",
    "您的訂單 1042 已出貨，預計明天上午 11:00 前送達。我們會在簽收後再寄一封信給您。" * 2,  # noqa: RUF001
    "Order 1042: 🌹 x 12",
    "=?utf-8?b?not an encoded word?= really",
])
def test_non_ascii_and_tricky_subjects_round_trip(subject: str) -> None:
    data = build_message(rendered(subject=subject), envelope())

    assert parse(data)["Subject"] == subject
    assert all(len(line) <= 78 for line in header_lines(data))
    assert_encoded_words_stand_alone(data)


def test_long_ascii_subject_is_folded_at_spaces() -> None:
    subject = "Your order 1042 from Blossom & Co is on the delivery truck and will arrive " * 3
    data = build_message(rendered(subject=subject), envelope())

    lines = [line for line in header_lines(data) if line.startswith(("Subject:", " "))]
    assert len(lines) > 2
    assert all(len(line) <= 78 for line in lines)
    assert "=?" not in "".join(lines)  # plain ASCII, not encoded
    assert parse(data)["Subject"] == subject.strip()


def test_ascii_subject_with_a_word_too_long_for_a_line_still_fits() -> None:
    subject = "Track it at https://carrier.example/track/" + "9" * 90 + " today"
    data = build_message(rendered(subject=subject), envelope())

    assert all(len(line) <= 78 for line in header_lines(data))
    assert parse(data)["Subject"] == subject


def test_empty_subject_and_name() -> None:
    data = build_message(rendered(subject=""), envelope(to_name=None))
    message = parse(data)

    assert message["Subject"] == ""
    assert "To: lin@example.com" in header_lines(data)
    (recipient,) = message["To"].addresses
    assert (recipient.display_name, recipient.addr_spec) == ("", "lin@example.com")


@pytest.mark.parametrize("name", [
    "Blossom & Co",
    "O'Brien, Pat",
    'Pat "The Florist" Lin',
    "back\\slash \\",
    "lin@example.com",
    "Lin; Bcc: evil@attacker.example",
    "Lin <evil@attacker.example>",
    "Lin, evil@attacker.example, other@attacker.example",
    "(comment) Lin",
    "=?utf-8?q?evil?=",
    "Dr. Lin",
    "Lin " * 40,
])
def test_ascii_names_with_specials_give_one_address_and_the_same_name(name: str) -> None:
    data = build_message(rendered(), envelope(to_name=name, from_header=f'"{_quote(name)}" <c@x.example>'))
    message = parse(data)

    for field, address in (("To", "lin@example.com"), ("From", "c@x.example")):
        (mailbox,) = message[field].addresses
        assert mailbox.addr_spec == address
        assert display_name(data, message, field) == name.strip()
    assert message.keys() == [*CORE_FIELDS, "List-Unsubscribe", "List-Unsubscribe-Post"]
    assert all(len(line) <= 78 for line in header_lines(data))


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


# --- no value from the database can add or break a header ---------------------------


@pytest.mark.parametrize("evil", [
    "Hi\r\nBcc: evil@attacker.example",
    "Hi\nBcc: evil@attacker.example",
    "Hi\rBcc: evil@attacker.example",
    "Hi\r\n\r\n<html>body</html>",
    "Hi\x00\x0b\x0c\x1c\x85\u2028\u2029Bcc: evil@attacker.example",
])
def test_line_breaks_cannot_add_headers(evil: str) -> None:
    data = build_message(
        rendered(subject=evil),
        envelope(to_name=evil, extra_headers=(("List-Unsubscribe", evil),)),
    )
    message = parse(data)

    assert message.keys() == [*CORE_FIELDS, "List-Unsubscribe"]
    assert message["Subject"] == expected_clean(evil)
    assert message["List-Unsubscribe"] == expected_clean(evil)
    (recipient,) = message["To"].addresses
    assert recipient.addr_spec == "lin@example.com"
    assert recipient.display_name == expected_clean(evil)
    assert len(list(message.iter_parts())) == 2


def test_subject_whitespace_is_collapsed() -> None:
    message = parse(build_message(rendered(subject="  Order\t\t1042 \r\n  shipped  "), envelope()))

    assert message["Subject"] == "Order 1042 shipped"


def test_extra_header_values_keep_long_urls_whole() -> None:
    url = "<https://blossom.example/unsubscribe?token=" + "a" * 150 + ">"
    value = f"{url}, <mailto:unsubscribe@blossom.example?subject=unsubscribe>"
    data = build_message(rendered(), envelope(extra_headers=(("List-Unsubscribe", value),)))

    assert url in data.decode("ascii")  # never split or encoded: clients must read it
    assert parse(data)["List-Unsubscribe"] == value
    assert all(len(line) <= 998 for line in header_lines(data))


def test_extra_header_non_ascii_value_is_encoded() -> None:
    data = build_message(rendered(), envelope(extra_headers=(("X-Campaign", "情人節 🌹"),)))

    assert "=?utf-8?b?" in raw_field(data, "X-Campaign")
    assert parse(data)["X-Campaign"] == "情人節 🌹"


@pytest.mark.parametrize("name", ["Bcc", "subject", "X Campaign", "X:Campaign", "", "X-Ü",
                                  "X-Campaign\r\nBcc"])
def test_extra_header_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="extra header name"):
        build_message(rendered(), envelope(extra_headers=((name, "1"),)))


# --- property tests -----------------------------------------------------------------

# Plenty of the characters that break headers, between arbitrary Unicode.
hostile_text = st.one_of(
    st.text(alphabet=st.one_of(st.sampled_from('\r\n\x00\t ,<>@;:"\\()=?\x85\u2028'),
                               st.characters())),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=300),  # long ASCII words too
)
addresses = st.sampled_from([
    "lin@example.com", "o'brien+roses@mail.example.co.uk", "x@xn--bcher-kva.example", "a@b.cn",
])
from_headers = st.sampled_from([
    "Blossom & Co <care@blossom.example>", "花店 <care@x.example>", "care@blossom.example",
])


@settings(max_examples=400, deadline=None)
@given(name=st.one_of(st.none(), hostile_text), subject=hostile_text, value=hostile_text,
       address=addresses, from_header=from_headers)
def test_database_values_never_add_headers_or_recipients(
    name: str | None, subject: str, value: str, address: str, from_header: str,
) -> None:
    env = envelope(to_name=name, to_address=address, from_header=from_header,
                   extra_headers=(("List-Unsubscribe", value), ("X-Campaign", subject)))
    data = build_message(rendered(subject=subject), env)
    message = parse(data)

    assert message.keys() == [*CORE_FIELDS, "List-Unsubscribe", "X-Campaign"]
    (recipient,) = message["To"].addresses
    assert recipient.addr_spec == address
    assert display_name(data, message, "To") == expected_clean(name or "")
    assert message["Subject"] == expected_clean(subject)
    if "=?" not in value:  # ASCII values go out verbatim; "=?" there is the caller's text
        assert message["List-Unsubscribe"] == expected_clean(value)
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert all(len(line) <= 998 for line in header_lines(data))
    fields = field_lines(data)
    # Extra header values may pass 78 (URLs are never broken); our own fields may not.
    assert all(len(line) <= 78 for field in CORE_FIELDS for line in fields[field])
    assert_encoded_words_stand_alone(data)


@settings(max_examples=200, deadline=None)
@given(text=st.text(), html=st.text())
def test_any_body_decodes_to_exactly_the_input(text: str, html: str) -> None:
    message = parse(build_message(rendered(text=text, html=html), envelope()))

    plain, rich = message.iter_parts()
    assert plain.get_content() == _without_controls(text)
    assert rich.get_content() == _without_controls(html)


def _without_controls(text: str) -> str:
    """The body as it should arrive: line breaks as LF, other controls gone, tab kept."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join("\n" if ch in "\x85\u2028\u2029" else ch for ch in text)
    return "".join(ch for ch in text if ch in "\t\n" or unicodedata.category(ch) != "Cc")


@settings(max_examples=400, deadline=None)
@given(candidate=st.one_of(
    hostile_text,
    st.builds("{}@{}".format, hostile_text, hostile_text),
    st.builds("{}@{}.example".format, st.text("abc.-+'\" ,<>@\r\n", max_size=8),
              st.text("abc.-é_", max_size=8)),
))
def test_an_accepted_address_is_exactly_one_recipient(candidate: str) -> None:
    try:
        address = check_address(candidate)
    except InvalidAddress as exc:
        assert str(exc)  # always says why
        return
    assert re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+", address)
    message = parse(build_message(rendered(), envelope(to_address=candidate)))
    (recipient,) = message["To"].addresses
    assert recipient.addr_spec == address


# --- addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(("given", "expected"), [
    ("lin@example.com", "lin@example.com"),
    ("  lin@example.com\n", "lin@example.com"),
    ("O'Brien+roses@Mail.Example.co.uk", "O'Brien+roses@Mail.Example.co.uk"),
    ("first.last@sub-domain.example", "first.last@sub-domain.example"),
    ("care@localhost", "care@localhost"),
    ("lin@bücher.example", "lin@xn--bcher-kva.example"),
    ("lin@例え.jp", "lin@xn--r8jz45g.jp"),
    ("lin@花店.中国", "lin@xn--hxto71f.xn--fiqs8s"),
])
def test_check_address_accepts_normal_and_international_addresses(given: str, expected: str) -> None:
    assert check_address(given) == expected


@pytest.mark.parametrize(("given", "reason"), [
    ("", "the address is empty"),
    ("   ", "the address is empty"),
    ("bob@", "'bob@' has no domain"),
    ("bob", "'bob' has no @"),
    ("@example.com", "'@example.com' has nothing before the @"),
    ("a@b@example.com", "has more than one @"),
    ("bob smith@example.com", "contains a space"),
    ("bob@example.com\r\nBcc: evil@attacker.example", "contains a line break"),
    ("bob@example.com\nx", "contains a line break"),
    ("bob@example.com, evil@attacker.example", "contains a comma"),
    ("Bob <bob@example.com>", "contains a space"),
    ("<bob@example.com>", "contains an angle bracket"),
    ('"bob"@example.com', "contains a quote"),
    ("bob;evil@example.com", "contains a semicolon"),
    ("bob\x00@example.com", "contains a NUL character"),
    ("bob\u3000@example.com", "contains whitespace"),
    ("b(c)@example.com", "contains the character '('"),
    ("bob\u00e9@example.com", "non-ASCII characters before the @"),
    ("林美玲@example.com", "non-ASCII characters before the @"),
    (".bob@example.com", "misplaced dot"),
    ("bob.@example.com", "misplaced dot"),
    ("b..ob@example.com", "misplaced dot"),
    ("a" * 65 + "@example.com", "more than 64 characters"),
    ("bob@example", "has no dot in its domain"),
    ("bob@example..com", "has an empty part in its domain"),
    ("bob@example.com.", "has an empty part in its domain"),
    ("bob@-example.com", "'-example' in its domain"),
    ("bob@exa_mple.com", "'exa_mple' in its domain"),
    ("bob@192.168.0.1", "ends in a number"),
    ("bob@[192.168.0.1]", "contains the character '['"),
    ("bob@straße.de", "disagree"),
    ("bob@" + "a" * 64 + ".com", "not a valid domain name part"),
    ("bob@" + ("a" * 60 + ".") * 5 + "com", "longer than 253"),
])
def test_check_address_rejects_with_a_reason(given: str, reason: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        check_address(given)
    assert reason in str(caught.value)


def test_check_address_reason_is_short_and_escaped() -> None:
    with pytest.raises(InvalidAddress) as caught:
        check_address("x\r\n" + "y" * 500)
    message = str(caught.value)
    assert "\r" not in message and "\n" not in message
    assert len(message) < 150


@pytest.mark.parametrize(("header", "expected"), [
    ("Blossom & Co <care@blossom.example>", ("Blossom & Co", "care@blossom.example")),
    ("花店 <care@x.example>", ("花店", "care@x.example")),
    ("care@blossom.example", ("", "care@blossom.example")),
    ("  care@blossom.example  ", ("", "care@blossom.example")),
    ("<care@blossom.example>", ("", "care@blossom.example")),
    ('"Blossom, Co" <care@blossom.example>', ("Blossom, Co", "care@blossom.example")),
    ('"Pat \\"Roses\\" Lin" <care@blossom.example>', ('Pat "Roses" Lin', "care@blossom.example")),
    ("Blossom   &  Co<care@blossom.example>", ("Blossom & Co", "care@blossom.example")),
    ("Blossom <care@bücher.example>", ("Blossom", "care@xn--bcher-kva.example")),
])
def test_parse_from(header: str, expected: tuple[str, str]) -> None:
    assert parse_from(header) == expected


@pytest.mark.parametrize(("header", "reason"), [
    ("Blossom <care@>", "has no domain"),
    ("Blossom care@blossom.example", "contains a space"),
    ("Blossom <care@blossom.example", "contains a space"),
    ("Blossom care@blossom.example>", "without a '<'"),
    ("Blossom\r\nBcc: evil@attacker.example <care@blossom.example>", "line break"),
    ("A <b> <care@blossom.example>", "not quoted"),
    ("", "the address is empty"),
])
def test_parse_from_rejects_malformed_headers(header: str, reason: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        parse_from(header)
    assert reason in str(caught.value)


def test_checked_addresses_are_reused_and_refusals_are_not() -> None:
    # check_address is cached: the answer is the same every time, and a refused address
    # is refused every time, each with its own exception.
    assert check_address(" lin@bücher.example ") == check_address(" lin@bücher.example ")
    assert check_address(" lin@bücher.example ") == "lin@xn--bcher-kva.example"
    refusals = []
    for _ in range(2):
        with pytest.raises(InvalidAddress, match="contains a line break") as caught:
            check_address("lin@example.com\r\nBcc: evil@attacker.example")
        refusals.append(caught.value)
    assert refusals[0] is not refusals[1]
    with pytest.raises(InvalidAddress, match="line break"):
        parse_from("Blossom\r\nBcc: evil@attacker.example <care@blossom.example>")
    assert parse_from("Blossom <care@blossom.example>") == parse_from("Blossom <care@blossom.example>")

"""Writes the hostile-input corpus (issue 17, part 3): malformed and hostile messages, one file
each, beside this script. Run it again to regenerate them:
`python tests/corpus/hostile/generate.py`.

Every message is sent by 王芳 (wangfang, authenticated) to one of Yizhan's addresses; a file
whose name contains ``.smtputf8`` is sent with MAIL FROM … SMTPUTF8. ``tests/daemon/
test_corpus.py`` sends each over SMTP to the running daemon and checks that each gets a definite
answer in time, that nothing is half-stored or set aside unheard of, and that memory stays
bounded. Each case is small, readable in an editor, and says in its Subject what it is.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).parent
FROM = "wangfang@bureau.example"
#: Where each case goes: the kinds of address that read a message differently.
TARGETS = ("fawen", "cmd", "ziliao", "lijun", "gonggao", "qianbao", "r+AAAAAAAAAAAAAAAAAAAAAA")


def head(to: str, subject: str, *extra: str, sender: str = FROM) -> str:
    lines = [f"From: {sender}", f"To: {to}@oa.example", f"Subject: {subject}"]
    digest = hashlib.sha256(f"{to}|{subject}|{extra}".encode("utf-8", "surrogateescape"))
    lines += [f"Message-ID: <{digest.hexdigest()[:16]}@corpus.test>"]
    lines += ["MIME-Version: 1.0", *extra]
    return "\r\n".join(lines) + "\r\n"


def text_part(body: str = "請審核。", charset: str = "utf-8", extra: str = "") -> str:
    return f"Content-Type: text/plain; charset={charset}\r\n{extra}\r\n{body}\r\n"


def attachment(name_param: str, data: bytes, ctype: str = "application/octet-stream") -> str:
    encoded = base64.encodebytes(data).decode().replace("\n", "\r\n")
    return (
        f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: attachment; {name_param}\r\n\r\n{encoded}"
    )


def multipart(parts: list[str], boundary: str = "b1", subtype: str = "mixed") -> str:
    body = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts)
    return (
        f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n{body}--{boundary}--\r\n'
    )


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def nested(depth: int, kind: str) -> str:
    body = text_part()
    for level in range(depth):
        if kind == "multipart":
            body = multipart([body], boundary=f"n{level}")
        else:
            body = f"Content-Type: message/rfc822\r\n\r\nSubject: level {level}\r\n{body}"
    return body


# --- The cases: name -> (subject, the rest of the header section and the body) -----------------


def cases() -> Iterator[tuple[str, str, str]]:
    # Boundaries.
    yield (
        "boundary-missing",
        "multipart without boundary",
        ("Content-Type: multipart/mixed\r\n\r\n--x\r\n" + text_part() + "--x--\r\n"),
    )
    yield (
        "boundary-empty",
        "empty boundary",
        ('Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n' + text_part() + "----\r\n"),
    )
    yield (
        "boundary-mismatch",
        "boundary that never occurs",
        (
            "Content-Type: multipart/mixed; boundary=zzz\r\n\r\n--yyy\r\n"
            + text_part()
            + "--yyy--\r\n"
        ),
    )
    yield (
        "boundary-unclosed",
        "multipart never closed",
        ("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + text_part()),
    )
    yield "boundary-long", "boundary of 500 characters", multipart([text_part()], "b" * 500)
    yield "boundary-spaces", "boundary with spaces", multipart([text_part()], "a b c ")
    yield (
        "boundary-same-nested",
        "inner multipart with the outer boundary",
        multipart([multipart([text_part(), text_part()], "same")], "same"),
    )
    yield (
        "boundary-only-preamble",
        "only preamble and epilogue",
        ("Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble only\r\n"),
    )
    yield (
        "multipart-empty",
        "multipart with no parts",
        ("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n"),
    )
    yield (
        "multipart-garbage-type",
        "content type multipart/",
        ("Content-Type: multipart/\r\n\r\nbody\r\n"),
    )
    # Nesting.
    for depth in (5, 30, 31, 60, 100, 1000):
        yield (
            f"nested-multipart-{depth}",
            f"multipart nested {depth} deep",
            nested(depth, "multipart"),
        )
        yield (
            f"nested-rfc822-{depth}",
            f"message/rfc822 nested {depth} deep",
            nested(depth, "message"),
        )
    # Many parts.
    for count in (150, 1000, 3000):
        yield (
            f"parts-{count}",
            f"{count} text parts",
            multipart([text_part(str(n)) for n in range(count)]),
        )
    yield (
        "attachments-2000",
        "2,000 small attachments",
        multipart(
            [text_part()]
            + [attachment(f'filename="f{n}.txt"', b"x" * 64, "text/plain") for n in range(2000)]
        ),
    )
    # Headers.
    yield "header-1mb-line", "a 1 MB header line", f"X-Long: {'a' * 1_000_000}\r\n" + text_part()
    yield (
        "header-10000",
        "10,000 headers",
        "".join(f"X-H{n}: {n}\r\n" for n in range(10_000)) + text_part(),
    )
    yield "header-no-colon", "a header line without a colon", "Not a header\r\n" + text_part()
    yield "header-nul", "a NUL in a header", "X-Nul: a\x00b\r\n" + text_part()
    yield (
        "header-8bit-invalid",
        "invalid UTF-8 in a header",
        "X-Bad: \udcff\udcfe\r\n" + text_part(),
    )
    yield "header-empty-name", "an empty header name", ": value\r\n" + text_part()
    yield (
        "header-obs-fold",
        "folded header with only whitespace",
        "X-Fold:\r\n \r\n \r\n" + text_part(),
    )
    yield "header-duplicate-ct", "two Content-Types", ("Content-Type: text/html\r\n" + text_part())
    yield (
        "header-ct-params",
        "5,000 Content-Type parameters",
        (
            "Content-Type: text/plain; "
            + "; ".join(f"p{n}={n}" for n in range(5000))
            + "\r\n\r\nx\r\n"
        ),
    )
    yield (
        "header-unterminated-quote",
        "unterminated quote in a parameter",
        ('Content-Type: multipart/mixed; boundary="b\r\n\r\n--b\r\n' + text_part() + "--b--\r\n"),
    )
    # Bytes.
    yield "body-nul", "NUL bytes in the body", text_part("a\x00b\x00c")
    yield "body-invalid-utf8", "invalid UTF-8 in the body", text_part("\udcff\udcfe\udc80 ok")
    yield "body-invalid-utf8.smtputf8", "invalid UTF-8, SMTPUTF8", text_part("\udcff\udcfe ok")
    yield "body-bare-cr", "bare CR and LF", text_part("a\rb\nc\r\rd")
    yield "body-long-line", "a 100,000-character body line", text_part("字" * 100_000)
    # Charsets.
    for charset in (
        "x-unknown",
        "unicode_escape",
        "raw_unicode_escape",
        "punycode",
        "undefined",
        "rot13",
        "utf-7",
        "idna",
        "base64_codec",
        "zlib_codec",
        "hex_codec",
        "uu_codec",
        "utf-32",
        "gb2312",
        "big5",
        "iso-2022-jp",
        '""',
        "utf-8\x00",
        "a" * 300,
    ):
        safe = "".join(c if c.isalnum() else "_" for c in charset)[:40]
        yield f"charset-{safe}", f"charset {safe}", text_part("請審核 \\N{ \\x4 abc", charset)
    yield (
        "charset-lying-gbk-as-utf8",
        "GBK labelled UTF-8",
        (
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            + "請審核".encode("gbk").decode("latin-1")
        ),
    )
    # Transfer encodings.
    yield (
        "base64-broken",
        "broken base64",
        text_part("!!!@@@###", extra="Content-Transfer-Encoding: base64\r\n"),
    )
    yield (
        "base64-truncated",
        "truncated base64",
        text_part("5L2g5aW9", extra="Content-Transfer-Encoding: base64\r\n") + "5L",
    )
    yield (
        "qp-broken",
        "broken quoted-printable",
        text_part("=ZZ=\r\n=E4=B=\r\n=", extra="Content-Transfer-Encoding: quoted-printable\r\n"),
    )
    yield (
        "cte-unknown",
        "unknown transfer encoding",
        text_part("abc", extra="Content-Transfer-Encoding: x-rot13\r\n"),
    )
    # Encoded words.
    for where, header in (("from", "From"), ("subject", "Subject"), ("to", "To")):
        value = (
            f"=?utf-8?q?Wang=0D=0ABcc:_evil@x.example?= <{FROM}>"
            if where == "from"
            else "=?utf-8?q?a=0D=0AX-Yizhan-Doc:_1?="
        )
        yield (
            f"ew-crlf-{where}",
            f"encoded word hiding CR LF in {header}",
            (f"X-Replace-{header}: {value}\r\n" + text_part()),
        )
    yield (
        "ew-nul",
        "encoded word with NUL",
        "X-Replace-Subject: =?utf-8?q?a=00b?=\r\n" + text_part(),
    )
    yield (
        "ew-bad-charset",
        "encoded word in charset unicode_escape",
        ("X-Replace-Subject: =?unicode_escape?q?=5CN{?=\r\n" + text_part()),
    )
    yield (
        "ew-punycode",
        "punycode encoded word",
        ("X-Replace-Subject: =?punycode?q?abc-def?=\r\n" + text_part()),
    )
    yield (
        "ew-huge",
        "a 200 KB encoded word",
        (
            "X-Replace-Subject: =?utf-8?b?"
            f"{base64.b64encode('字'.encode() * 50_000).decode()}?=\r\n" + text_part()
        ),
    )
    # Archives.
    yield (
        "zip-bomb",
        "zip of 50 MB of zeros",
        multipart(
            [text_part(), attachment('filename="bomb.zip"', zipped({"zeros.bin": bytes(50 << 20)}))]
        ),
    )
    inner = zipped({"a.txt": b"hello"})
    for _ in range(9):
        inner = zipped({"inner.zip": inner})
    yield (
        "zip-nested-10",
        "zip nested 10 deep",
        multipart([text_part(), attachment('filename="nest.zip"', inner)]),
    )
    yield (
        "zip-traversal",
        "zip member ../../etc/passwd",
        multipart(
            [text_part(), attachment('filename="t.zip"', zipped({"../../etc/passwd": b"root:x"}))]
        ),
    )
    yield (
        "zip-corrupt",
        "corrupt zip",
        multipart([text_part(), attachment('filename="c.zip"', b"PK\x03\x04" + b"\xff" * 200)]),
    )
    # File names.
    for label, param in (
        ("traversal", 'filename="../../../etc/passwd"'),
        ("absolute", 'filename="/etc/shadow"'),
        ("windows", 'filename="C:\\Windows\\system32\\cmd.exe"'),
        ("rlo", 'filename="invoice\u202efdp.exe"'),
        ("rlo-2231", "filename*=utf-8''invoice%E2%80%AEfdp.exe"),
        ("nul", 'filename="a\x00b.txt"'),
        ("long", f'filename="{"長" * 5000}.txt"'),
        ("con", 'filename="CON"'),
        ("empty", 'filename=""'),
        ("2231-gaps", "filename*0*=utf-8''a; filename*5=b.txt"),
        ("2231-bad-charset", "filename*=unicode_escape''%5CN%7B.txt"),
        ("ew-crlf", 'filename="=?utf-8?q?a=0D=0Ab.txt?="'),
        ("marking-raw", 'filename="機密★1年.txt"'),
        ("marking-raw.smtputf8", 'filename="秘密★.docx"'),
    ):
        yield (
            f"filename-{label}",
            f"file name: {label}",
            multipart([text_part(), attachment(param, b"data")]),
        )
    # HTML.
    yield (
        "html-script",
        "HTML with scripts",
        (
            "Content-Type: text/html; charset=utf-8\r\n\r\n<html><script>alert(1)</script>"
            "<iframe src='javascript:alert(2)'></iframe><img src=x onerror=alert(3)>"
            "請審核</html>\r\n"
        ),
    )
    yield (
        "html-unclosed",
        "HTML never closed",
        ("Content-Type: text/html; charset=utf-8\r\n\r\n" + "<div>" * 10_000 + "\r\n"),
    )
    # Signatures.
    yield (
        "pgp-bogus",
        "multipart/signed with a garbage signature",
        multipart(
            [
                text_part("同意"),
                "Content-Type: application/pgp-signature\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\n"
                "garbage\r\n-----END PGP SIGNATURE-----\r\n",
            ],
            subtype='signed; protocol="application/pgp-signature"; micalg=pgp-sha256',
        ),
    )
    yield (
        "pgp-one-part",
        "multipart/signed with one part",
        multipart([text_part("同意")], subtype='signed; protocol="application/pgp-signature"'),
    )
    yield (
        "pgp-inline-bogus",
        "inline PGP block that is not one",
        text_part(
            "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\n同意\r\n"
            "-----BEGIN PGP SIGNATURE-----\r\nAAAA\r\n-----END PGP SIGNATURE-----"
        ),
    )
    yield (
        "encrypted",
        "multipart/encrypted",
        multipart(
            [
                "Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n",
                "Content-Type: application/octet-stream\r\n\r\n"
                "-----BEGIN PGP MESSAGE-----\r\nx\r\n",
            ],
            subtype='encrypted; protocol="application/pgp-encrypted"',
        ),
    )
    # Forged Yizhan headers.
    yield (
        "forged-yizhan",
        "forged X-Yizhan headers",
        (
            "X-Yizhan-Doc: 1\r\nX-Yizhan-Action: approve\r\nX-Yizhan-State: done\r\n"
            "Reply-To: r+AAAAAAAAAAAAAAAAAAAAAA@oa.example\r\n" + text_part("同意")
        ),
    )
    yield (
        "forged-yizhan-name",
        "display name 驛站",
        (f"X-Replace-From: =?utf-8?b?6amb56uZ?= <{FROM}>\r\n" + text_part("同意")),
    )
    # Parts that are not what they say.
    yield (
        "rfc822-not-a-message",
        "message/rfc822 that is not a message",
        multipart([text_part(), "Content-Type: message/rfc822\r\n\r\njust some text\r\n"]),
    )
    yield (
        "rfc822-empty",
        "empty message/rfc822",
        multipart([text_part(), "Content-Type: message/rfc822\r\n\r\n"]),
    )
    yield (
        "message-partial",
        "message/partial",
        ('Content-Type: message/partial; id="x"; number=1; total=2\r\n\r\n' + text_part()),
    )
    yield (
        "external-body",
        "message/external-body",
        (
            'Content-Type: message/external-body; access-type=URL; URL="http://x.example/"\r\n\r\n'
            + text_part()
        ),
    )
    yield "ct-slash", "content type /", "Content-Type: /\r\n\r\nbody\r\n"
    yield "ct-empty-charset", "empty charset", "Content-Type: text/plain; charset=\r\n\r\nabc\r\n"
    # Identity and dates.
    yield (
        "message-id-huge",
        "a 10 KB Message-ID",
        f"X-Replace-Message-ID: <{'m' * 10_000}@x>\r\n" + text_part(),
    )
    yield (
        "date-garbage",
        "an impossible Date",
        "Date: Mon, 99 Foo 99999 99:99:99 +9999\r\n" + text_part(),
    )
    yield "body-empty", "no body at all", "Content-Type: text/plain\r\n\r\n"
    yield (
        "subject-huge-command",
        "a command 100,000 characters long",
        ("X-Replace-Subject: GET #" + "9" * 100_000 + "\r\n" + text_part()),
    )


def build(to: str, subject: str, rest: str) -> bytes:
    """One message: the usual header with ``X-Replace-Name:`` fields standing for Name."""
    lines = rest.split("\r\n")
    replaced: dict[str, str] = {}
    kept: list[str] = []
    for line in lines:
        if line.startswith("X-Replace-") and ":" in line and not replaced.get("__done"):
            name, value = line[len("X-Replace-") :].split(":", 1)
            replaced[name] = value.strip()
            continue
        kept.append(line)
    sender = replaced.pop("From", FROM)
    header = head(to, replaced.pop("Subject", subject), sender=sender)
    for name, value in replaced.items():
        header = "\r\n".join(
            f"{name}: {value}" if line.split(":", 1)[0] == name else line
            for line in header.split("\r\n")
        )
    return (header + "\r\n".join(kept)).encode("utf-8", "surrogateescape")


def main(write: Callable[[Path, bytes], None] | None = None) -> int:
    """Write every case for each target its number picks (at least 300 files); the count."""
    for old in HERE.glob("*.eml"):
        old.unlink()
    written = 0
    for n, (name, subject, rest) in enumerate(cases()):
        # Each case goes to three of the targets, chosen by its position; a large one to one.
        for k in range(3 if len(rest) < 100_000 else 1):
            to = TARGETS[(n + k * 2) % len(TARGETS)]
            local = to.split("+")[0]
            path = HERE / f"{n:03d}-{name}.{local}.eml"
            if ".smtputf8" in name:
                path = HERE / f"{n:03d}-{name.replace('.smtputf8', '')}.{local}.smtputf8.eml"
            data = build(to, subject, rest)
            (write or Path.write_bytes)(path, data)
            written += 1
    return written


if __name__ == "__main__":
    print(f"wrote {main()} messages to {HERE}")

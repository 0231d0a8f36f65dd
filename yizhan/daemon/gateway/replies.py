"""The SMTP replies of the gateway, as constants (ASCII: a client that did not ask for
SMTPUTF8 may not read anything else)."""

from __future__ import annotations

from typing import Final

# --- Replies --------------------------------------------------------------------------------------
# Kept ASCII: a client that did not ask for SMTPUTF8 may not read anything else.

OK_235_AUTH: Final = "235 2.7.0 Authentication successful"
OK_250_SENDER: Final = "250 2.1.0 Sender OK"
OK_250_RCPT: Final = "250 2.1.5 Recipient OK"
OK_250_RCPT_AGAIN: Final = "250 2.1.5 Recipient OK (already named; delivered once)"
#: The key names the message's raw file (``<key>.eml``) until the pickup makes its inbound row.
OK_250_QUEUED: Final = "250 2.0.0 OK: queued as {key}"
ERR_421_BUSY: Final = "421 4.7.0 {host} Too many connections; try again later"
ERR_450_GUESSING: Final = (
    "450 4.7.1 Too many replies to r+ addresses Yizhan never gave, from this address or "
    "account: reply addresses are refused from it until {until} UTC, and the IT department "
    "has been told (article 7); reply to the mail Yizhan sent you, keeping its Reply-To"
)
ERR_451_STORE: Final = "451 4.3.0 The message was not accepted: {reason}; try again later"
ERR_421_CLIENT_BUSY: Final = (
    "421 4.7.0 {host} Too many connections from your address; try again later"
)
ERR_421_IDLE: Final = "421 4.4.2 {host} Idle too long; closing the connection"
ERR_421_NO_AUTH: Final = "421 4.7.0 {host} Not authenticated in time; closing the connection"
ERR_421_MAKE_ROOM: Final = (
    "421 4.7.0 {host} Not authenticated, and the server is full; closing the connection"
)
ERR_452_RECIPIENTS: Final = (
    "452 4.5.3 Too many recipients: at most {limit} per message; send the rest in another"
)
ERR_451_INTERNAL: Final = "451 4.3.0 Temporary server error; try again later"
ERR_501_BASE64: Final = "501 5.5.2 Cannot decode the base64 credentials"
ERR_501_DATA: Final = "501 5.5.4 Syntax: DATA"
ERR_501_PLAIN: Final = "501 5.5.2 AUTH PLAIN needs authzid NUL login NUL password"
ERR_503_NO_RCPT: Final = "503 5.5.1 Error: need RCPT command"
ERR_530_AUTH: Final = "530 5.7.0 Authentication required"
ERR_535_AUTH: Final = "535 5.7.8 Authentication failed: {reason}"
ERR_550_NOT_YOURS: Final = (
    "550 5.7.1 {where} <{address}> is not an address of account {account}; "
    "sending in another person's name is refused and recorded (article 7)"
)
ERR_550_LOGIN: Final = "550 5.7.1 The login {account} may not send: {reason}"
ERR_550_NOT_YOUR_NAME: Final = (
    "550 5.7.1 From: shows the name of another person (account {other}), not of {account}; "
    "sending in another person's name is refused and recorded (article 7)"
)
ERR_550_NULL_SENDER: Final = (
    "550 5.7.1 The null sender <> is accepted only from the organisation's mail server"
)
ERR_553_ADDRESS: Final = "553 5.1.7 The address is not valid: {reason}"
ERR_554_HEADERS: Final = "554 5.6.0 The message headers cannot be used: {reason}"

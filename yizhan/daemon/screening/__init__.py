"""Screening: the content rules applied to mail, at the gateway and after acceptance.

``check.check_message`` runs after DATA, before the message is stored: a refusal is an SMTP reply
(550 5.7.1 with the reason in Chinese and English), and the sender also gets a mail that explains
the rule; the IT department gets a notice when the rule's row says so (``routing.content.table``),
and the audit trail an entry (``notices``). A scanner that cannot be reached (``clamd``) makes a 451
(try again later): mail is never passed unscanned. A message refused after it was accepted, when
the rules changed meanwhile, is kept in the quarantine instead (``quarantine``; nothing lost).

The rules come from the ``[content]`` table of the rules file (``daemon.rules_file``), read again
whenever the file changes, so the IT department's edits apply without a restart.
"""

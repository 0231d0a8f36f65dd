"""IMAP (issue 13): Yizhan's own Dovecot, filing people's mail into their folders, fetch mode.

``dovecot``/``dovecot_conf`` run and configure the Dovecot that serves ``<data_dir>/maildirs``;
``folders`` decides which folder a message belongs in; ``session`` is the one place that talks
IMAP (aioimaplib); ``courier`` files the outbound queue's mail for people; ``tidy`` keeps each
person's 公文/待辦 equal to their open steps; ``fetch`` reads mail for Yizhan from a mailbox.
"""

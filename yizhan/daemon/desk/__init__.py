"""The document desk: answers each recipient of an accepted message and sends what it causes.

For each recipient the processor makes a :class:`~yizhan.daemon.desk.request.Request` and hands
it to whoever answers that address (``dispatch.RECEIVERS``): a module of 第二條
(``modules/``), a command at cmd@ (``commands/``), a reply to a step (``replies``) or a person's
OA address. A handler asks ``routing`` what to do; a decision about a document comes back as
an ``Outcome``, which ``decisions`` applies; every mail goes out through the ``mailer``. All of
it happens inside the processor's transaction. docs/architecture.md draws the whole path.
"""

from yizhan.daemon.desk.parts import Desk

__all__ = ["Desk"]

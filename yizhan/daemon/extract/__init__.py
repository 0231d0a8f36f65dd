"""Reads a message's attachments for the content rules: their types, text, properties and archives.

The rules in ``routing.content`` see only what this module extracts (an
:class:`~yizhan.routing.content.model.Attachment` per file and archive member). Everything
here is blocking and runs in a worker thread; every read is bounded, because the input is
whatever a sender chose to attach:

- a file's type comes from its bytes (magic numbers; for a zip, the members it holds), never
  from its name alone;
- Office Open XML (.docx, .xlsx, .pptx), OpenDocument (.odt …) and OFD are zips of XML, read
  with :mod:`zipfile` and :mod:`xml.etree` (XML with a DTD is refused unread, so no entity
  tricks); PDFs with pypdf; Word/Excel 97 files by their UTF-16 text runs; text in UTF-8,
  GB 18030 (GBK) or Big5, whichever the bytes are;
- zips are walked member by member, nested zips too, counting declared sizes first, so that a
  zip bomb is measured from its directory and never expanded.
"""

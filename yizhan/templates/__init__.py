"""Jinja2 templates for mail and pages, translated with Babel catalogs (zh_CN, zh_TW, en)."""

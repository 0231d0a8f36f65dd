"""Routing: pure decisions from the directory, the rules, the document and the command."""

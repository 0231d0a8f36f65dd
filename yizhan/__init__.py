"""驛站 Yizhan: office automation whose spine is mail."""

__version__ = "0.1.0"

"""OpenPGP seals and verification (python-gnupg over the gpg binary)."""

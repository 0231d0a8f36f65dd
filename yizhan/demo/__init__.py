"""The demo bureau loaded by `yizhan demo`."""

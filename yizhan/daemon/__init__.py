"""The daemon: SMTP listener, outbound queue, workers, scheduler, lifecycle and config."""

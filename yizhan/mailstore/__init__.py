"""The durable stores: raw messages, queues, documents, directory and audit trail."""

"""The admin page: organisation, rules and queues for administrators."""

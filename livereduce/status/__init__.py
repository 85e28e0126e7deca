"""What the daemon shows of itself: the status model (a record subscriber), Prometheus metrics, the read-only
HTTP server with the live page, the plot data the worker publishes, and `livereduce status`."""

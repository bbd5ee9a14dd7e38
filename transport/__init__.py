"""ZeroMQ distribution. Empty until the distribution issue lands."""

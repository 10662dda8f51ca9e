"""The scaled topology on one machine, with no Docker: PostgreSQL, Redis, a local S3, API and
worker processes. `make cluster` starts it for trying and testing; the tests and benchmarks
start the same services from here."""

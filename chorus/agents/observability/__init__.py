"""Structured JSON logs with request/tenant/thread ids, PII redaction, and Prometheus metrics."""

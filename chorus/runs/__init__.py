"""Threads and runs: the LangGraph Agent Server-compatible chat API and the run executor."""

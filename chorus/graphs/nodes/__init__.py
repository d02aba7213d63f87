"""The nodes of a compiled bot: intake (PII, escalation triggers), agent (the model), tools."""

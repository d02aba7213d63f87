-- The tool-call ledger (agents/tools/ledger.py) keys a call by the thread id the graph runs under: text,
-- as the checkpointer's (`chorus chat --thread NAME` need not be a uuid), and scoped by tenant.
ALTER TABLE tool_calls DROP CONSTRAINT tool_calls_pkey;
ALTER TABLE tool_calls ALTER COLUMN thread_id TYPE text;
ALTER TABLE tool_calls ADD PRIMARY KEY (tenant_id, thread_id, tool_call_id);

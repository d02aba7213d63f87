"""The eval harness: suites of cases run against a bot config version through the run engine, scored by
deterministic metrics, with repeated trials, summaries, a CLI for CI and the deploy gate (docs/evals.md)."""

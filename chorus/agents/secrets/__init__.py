"""The per-tenant credential vault (seed 001 §7): secrets encrypted at rest, referenced by name from configs.

Modules: `references` (the `${secret:NAME}` syntax), `environments` (staging, production: a secret's scope),
`crypto` (AES-256-GCM), `master_key` (the key from CHORUS_SECRET_KEY or $CHORUS_HOME), `repository` (SQL),
`service` (the rules; `SecretVault`), `router`.
"""

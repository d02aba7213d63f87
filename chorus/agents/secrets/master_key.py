"""Where the vault key comes from: CHORUS_SECRET_KEY, else a key file generated under $CHORUS_HOME.

Production sets CHORUS_SECRET_KEY (and keeps it safe: without it the stored secrets cannot be read). For a
development machine the first start writes a random key to `$CHORUS_HOME/secret.key` (mode 0600) and says
so loudly; later starts, and every process sharing that home, read the same file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from chorus.agents.errors import ServerMisconfigured
from chorus.agents.secrets.crypto import KEY_FORMAT, VaultKey, new_key_text, parse_key
from chorus.agents.settings import Settings

log = logging.getLogger(__name__)
KEY_FILE = "secret.key"


def _read_or_create(path: Path) -> tuple[str, bool]:
    """The key file's text, creating it first (atomically: one writer wins) if it does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii"), False
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(new_key_text() + "\n")
    return path.read_text(encoding="ascii"), True


def load_vault_key(settings: Settings) -> VaultKey:
    """The vault key for this process; a malformed key is a ServerMisconfigured error naming its source."""
    if settings.secret_key is not None:
        return parse_key(settings.secret_key, source="CHORUS_SECRET_KEY")
    path = settings.home / KEY_FILE
    try:
        text, created = _read_or_create(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ServerMisconfigured(
            f"CHORUS_SECRET_KEY is not set and the key file {path} cannot be used ({exc}); "
            f"set CHORUS_SECRET_KEY to {KEY_FORMAT}"
        ) from None
    key = parse_key(text, source=f"the key file {path}")
    if created:
        log.warning(
            "CHORUS_SECRET_KEY is not set: generated a new vault key into %s (mode 0600); back it up with the "
            "database, and in production set CHORUS_SECRET_KEY instead (32 bytes, base64)",
            path,
            extra={"key_file": str(path), "key_id": key.key_id},
        )
    else:
        log.info("vault key read from the key file", extra={"key_file": str(path), "key_id": key.key_id})
    return key

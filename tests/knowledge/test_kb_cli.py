"""`chorus kb`: ingest a folder, search, import FAQs, re-embed with OpenAI (local stand-in) and back."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.fakes import openai_api, serve
from tests.knowledge.conftest import CORPUS, FAQ_FILE
from tests.test_cli import run_cli


async def test_kb_commands_end_to_end(database_url: str, tmp_path: Path) -> None:
    async def cli(*args: str) -> tuple[int, str, str]:
        out = await asyncio.to_thread(run_cli, ["kb", *args, "--tenant", "kb-cli"], database_url, tmp_path)
        return out.returncode, out.stdout, out.stderr

    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("refunds.md", "store-pickup.html", "shipping-rates.csv"):
        (folder / name).write_bytes((CORPUS / name).read_bytes())
    (folder / "logo.png").write_bytes(b"\x89PNG")
    code, out, err = await cli("ingest", str(folder), "--namespace", "help")
    assert code == 0, err
    assert out.count("completed") == 3 and "3 ingested, 0 unchanged, 1 skipped, 0 failed" in out
    code, out, _ = await cli("ingest", str(folder), "--namespace", "help")
    assert code == 0 and "0 ingested, 3 unchanged" in out

    code, out, _ = await cli("search", "how long do you hold my pickup order", "--namespace", "help", "--top-k", "2")
    assert code == 0 and out.startswith("1. [Store pickup and curbside") and "2 result(s)" in out

    code, out, err = await cli("faq", "import", str(FAQ_FILE), "--namespace", "help")
    assert code == 0 and "10 created" in out, err

    async with serve(openai_api()) as base_url:
        os.environ["OPENAI_API_KEY"], os.environ["OPENAI_BASE_URL"] = "sk-test", f"{base_url}/v1"
        try:
            code, out, err = await cli("reembed", "--namespace", "help", "--model", "text-embedding-3-small")
        finally:
            os.environ.pop("OPENAI_API_KEY")
            os.environ.pop("OPENAI_BASE_URL")
        assert code == 0, err
        assert "1536 dimensions; was all-MiniLM-L6-v2" in out and "FAQ phrasings" in out
    code, _, err = await cli("search", "pickup", "--namespace", "help")
    assert code == 1 and "OPENAI_API_KEY" in err  # the namespace's model now needs OpenAI credentials
    code, out, err = await cli("reembed", "--namespace", "help", "--model", "all-MiniLM-L6-v2")
    assert code == 0 and "384 dimensions; was text-embedding-3-small" in out, err  # back, without OpenAI
    code, out, _ = await cli("search", "how long do you hold my pickup order", "--namespace", "help", "--top-k", "1")
    assert code == 0 and out.startswith("1. [Store pickup and curbside")


async def test_kb_cli_bad_input(database_url: str, tmp_path: Path) -> None:
    def cli(*args: str) -> tuple[int, str]:
        out = run_cli(["kb", *args], database_url, tmp_path)
        return out.returncode, out.stdout + out.stderr

    assert cli("ingest", str(tmp_path / "missing"), "--namespace", "x")[0] == 2
    code, text = cli("search", "hello", "--namespace", "no-such-namespace")
    assert code == 1 and "no knowledge namespace" in text
    code, text = cli("reembed", "--namespace", "x", "--model", "word2vec")
    assert code == 1 and "unknown embedding model" in text
    bad = tmp_path / "bad.csv"
    bad.write_text("Question,Answer\n,no question\n")
    code, text = cli("faq", "import", str(bad), "--namespace", "x")
    assert code == 1 and "row 2" in text

"""Every JSON example in ``protocol_spec/`` is checked: it parses, it equals its file in ``examples/``, records
satisfy their shapes, signed examples verify, and a running node accepts and produces the same shapes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from node.catalog.validation import validate_document
from node.trust.proofs import verify
from tests.harness import running_node

SPEC = Path(__file__).resolve().parents[1] / "protocol_spec"
EXAMPLES = SPEC / "examples"
BLOCK = re.compile(r"```json\n(.*?)\n```", re.S)
NAMED_BLOCK = re.compile(r"\(`examples/([\w.-]+)`[^\n]*\n(?:[^\n]+\n)*\n```json\n(.*?)\n```", re.S)


def load(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text("utf-8"))


def spec_blocks() -> list[tuple[str, str]]:
    return [(md.name, block) for md in sorted(SPEC.glob("*.md")) for block in BLOCK.findall(md.read_text("utf-8"))]


def named_blocks() -> list[tuple[str, str]]:
    return [pair for md in sorted(SPEC.glob("*.md")) for pair in NAMED_BLOCK.findall(md.read_text("utf-8"))]


@pytest.mark.parametrize(("where", "block"), spec_blocks())
def test_every_json_block_parses(where: str, block: str) -> None:
    json.loads(block)


@pytest.mark.parametrize(("name", "block"), named_blocks())
def test_named_blocks_equal_their_example_files(name: str, block: str) -> None:
    assert json.loads(block) == load(name)


def test_every_example_file_is_shown_in_the_spec() -> None:
    assert {name for name, _ in named_blocks()} == {p.name for p in EXAMPLES.glob("*.json")}


RECORD_EXAMPLES = ["course.json", "tombstone.json", "course-signed.json"]


@pytest.mark.parametrize("name", RECORD_EXAMPLES)
def test_record_examples_satisfy_their_shapes(name: str) -> None:
    """[REC-6]"""
    assert validate_document(load(name)) == []


def test_signed_example_verifies_with_the_example_did_document() -> None:
    """[PRF-1] [PRF-4] [ID-4]"""
    did_document = load("did-document.json")
    signed = load("course-signed.json")
    assert {k: v for k, v in signed.items() if k != "proof"} == load("course.json")
    result = verify(signed, {did_document["id"]: did_document}.get, expected_controller=did_document["id"])
    assert result.verified, result


async def test_a_running_node_accepts_the_examples_and_serves_the_same_shapes(
    tmp_path: Path, database_url: str
) -> None:
    """[ID-3] [ID-4] [ID-5] [REC-1] [REC-4] [API-6]"""
    async with running_node(tmp_path / "node", database_url) as node:
        course = {k: v for k, v in load("course.json").items() if k not in ("id", "version", "dateModified")}
        signed = await node.publish(course)
        async with node.http.get(f"{node.base_url}/.well-known/did.json") as response:
            did_document: dict[str, Any] = await response.json(content_type=None)
    example_signed = load("course-signed.json")
    assert sorted(signed) == sorted(example_signed)
    assert signed["@context"] == example_signed["@context"]
    assert sorted(signed["proof"]) == sorted(example_signed["proof"])
    example_did = load("did-document.json")
    assert sorted(did_document) == sorted(example_did)
    assert did_document["@context"] == example_did["@context"]
    assert sorted(did_document["verificationMethod"][0]) == sorted(example_did["verificationMethod"][0])

"""Credentials over HTTP in the shapes of the W3C VC API: issue, verify, status, and credit transcripts.

A verification that fails is not a malformed request: it answers 422 with ``verified: false``, every check and
``problemDetails``; one that holds answers 200. Requests that are not what the API expects get 400 problems.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.errors import BadRequest
from node.web.inputs import read_json_object
from node.web.operations import METRICS
from node.web.services import Services, require_admin, services

STATUS_CHANGES = {"revoked", "suspended", "reinstated"}


def _member(body: dict[str, Any], name: str) -> Any:
    if name not in body:
        raise BadRequest(f"{name} is required", field=name)
    return body[name]


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise BadRequest("options must be an object", field="options")
    return options


async def _body(request: web.Request, found: Services) -> dict[str, Any]:
    return await read_json_object(request, found.config.limits.max_json_depth)


async def issue(request: web.Request) -> web.Response:
    found = require_admin(request)
    body = await _body(request, found)
    credential = await found.credit_bank.issuer.issue(_member(body, "credential"))
    return web.json_response({"verifiableCredential": credential}, status=201)


def _text_option(options: dict[str, Any], name: str) -> str | None:
    value = options.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"options.{name} must be a string", field=f"options.{name}")
    return value


async def _verify_presentation(request: web.Request, found: Services, body: dict[str, Any]) -> web.Response:
    options = _options(body)
    binding = options.get("holderMustBeSubject", False)
    if not isinstance(binding, bool):
        raise BadRequest("options.holderMustBeSubject must be true or false", field="options.holderMustBeSubject")
    verdict = await found.credit_bank.verifier.verify_presentation(
        _member(body, "verifiablePresentation"), challenge=_text_option(options, "challenge"),
        domain=_text_option(options, "domain"), holder_must_be_subject=binding,
    )
    request.app[METRICS].verifications.labels("presentation", "verified" if verdict.verified else "refused").inc()
    return web.json_response(verdict.as_json(), status=200 if verdict.verified else 422)


async def verify_credential(request: web.Request) -> web.Response:
    """A credential, or (as VC-API clients send them here too) a presentation."""
    found = services(request)
    body = await _body(request, found)
    if "verifiableCredential" not in body and "verifiablePresentation" in body:
        return await _verify_presentation(request, found, body)
    verdict = await found.credit_bank.verifier.verify_credential(_member(body, "verifiableCredential"))
    request.app[METRICS].verifications.labels("credential", "verified" if verdict.verified else "refused").inc()
    return web.json_response(verdict.as_json(), status=200 if verdict.verified else 422)


async def verify_presentation(request: web.Request) -> web.Response:
    found = services(request)
    return await _verify_presentation(request, found, await _body(request, found))


def _status_change(body: dict[str, Any]) -> str:
    """``{"status": …}`` or the VC API form ``{"credentialStatus": [{"type": …, "status": …}]}``."""
    status = body.get("status")
    if status is None and isinstance(body.get("credentialStatus"), list) and body["credentialStatus"]:
        entry = body["credentialStatus"][0]
        status = entry.get("status") if isinstance(entry, dict) else None
    if status not in STATUS_CHANGES:
        raise BadRequest("status must be revoked, suspended or reinstated", detail=str(status), field="status")
    return str(status)


async def update_status(request: web.Request) -> web.Response:
    found = require_admin(request)
    body = await _body(request, found)
    credential_id = _member(body, "credentialId")
    if not isinstance(credential_id, str):
        raise BadRequest("credentialId must be a string", field="credentialId")
    issued = await found.credit_bank.registry.update(credential_id, _status_change(body))
    return web.json_response({"credentialId": issued.id, "revoked": issued.revoked, "suspended": issued.suspended})


async def status_list(request: web.Request) -> web.Response:
    found = services(request)
    text = await found.credit_bank.registry.list_credential(request.match_info["list"])
    return web.Response(text=text, content_type="application/ld+json", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=60", "Access-Control-Allow-Origin": "*"})


async def transcript(request: web.Request) -> web.Response:
    found = services(request)
    body = await _body(request, found)
    options = _options(body)
    verified, result = await found.credit_bank.transcript(
        _member(body, "verifiablePresentation"), challenge=options.get("challenge"), domain=options.get("domain"),
        target_unit=_member(body, "targetUnit"),
    )
    return web.json_response(result, status=200 if verified else 422)


async def credit_systems(request: web.Request) -> web.Response:
    """Every credit system and conversion rule this node applies, with sources: the audit trail of transcripts."""
    rules = await services(request).credit_bank.rules()
    return web.json_response({
        "systems": [{"id": s.iri, "notation": s.notation, "name": s.label} for s in rules.systems()],
        "rules": [{"id": r.iri, "from": r.source, "to": r.target, "factor": str(r.factor),
                   "roundingMode": r.rounding, "decimalPlaces": r.decimal_places, "basis": r.basis,
                   "declaredBy": r.declared_by, "bibliographicCitation": r.citation, "source": r.source_url,
                   **({"cap": str(r.cap)} if r.cap is not None else {})} for r in rules.rules()],
    })


def setup(app: web.Application) -> None:
    app.router.add_post("/credentials/issue", issue)
    app.router.add_post("/credentials/verify", verify_credential)
    app.router.add_post("/presentations/verify", verify_presentation)
    app.router.add_post("/credentials/status", update_status)
    app.router.add_get("/credentials/status/{list}", status_list)
    app.router.add_post("/credits/transcript", transcript)
    app.router.add_get("/credits/systems", credit_systems)

#!/usr/bin/env python3
"""Verify and decode one Stafett message with stock libraries only.

A partner's proof that the wire format needs nothing from the Stafett code base: Python's
standard library, jwcrypto (JOSE), protobuf (with code that protoc generates at run time from
proto/stafett/v1/stafett.proto) and jsonschema (JSON Schema 2020-12). On Debian:

    apt-get install python3-jwcrypto python3-protobuf protobuf-compiler python3-jsonschema

Usage:

    verify_stafett.py --trust trust-list.jws --anchor anchor.pub.jwk.json --message event.bin \
        [--enc-key recipient.enc.jwk.json] [--schemas schemas/] [--proto stafett.proto]

What it does, in the order the reference implementation (services/shared/src/pipeline.ts)
does it, so both refuse a bad message with the same code:

  1. verifies the trust list (compact JWS, EdDSA) with the anchor and validates its payload;
  2. decodes the SignedEvent and verifies the issuer's detached JWS over the exact Event bytes,
     with the key that the trust list names by `kid`;
  3. decodes the Event to its canonical JSON (proto3 JSON mapping) and validates it against
     schemas/events/<type>.schema.json;
  4. checks the key (a signing key, not revoked, valid at the event's time), that the event's
     `source` owns it, and that the trust list's policy lets that role send this type;
  5. verifies every countersignature (national liaisons only);
  6. for `forwarded`, verifies the relayed event the same way;
  7. with --enc-key, decrypts the sealed personal part (JWE) and validates its plaintext.

On success it prints the verified canonical JSON of the event on stdout (the personal part
stays encrypted) and exits 0; progress goes to stderr, and of the decrypted personal part only
its top-level keys are printed, never a value. A refused message prints one line
"REFUSED <code> (<reason>) at <field>: <message>" on stderr and exits 1. A usage or set-up
problem (a missing file, library or protoc) exits 2.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import calendar
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

EVENT_TYPES = (
    "opened",
    "received",
    "rejected",
    "forwarded",
    "accepted",
    "declined",
    "updated",
    "withdrawn",
    "escalated",
    "closed",
    "reported",
)
SIGNING_ALG = "EdDSA"
KEY_WRAP_ALG = "ECDH-ES+A256KW"
CONTENT_ENC = "A256GCM"
EVENT_JWS_TYP = "stafett-event+jws"
TRUST_JWS_TYP = "stafett-trust+jws"
# The reference receiver's defaults (pipeline.ts DEFAULT_*).
MAX_BYTES = 256 * 1024
FUTURE_SKEW_MS = 5 * 60_000
DEFAULT_MAX_AGE_DAYS = 14

ORG_ID = re.compile(
    r"^([a-z]{2}):(?:(municipality):([0-9]{4})|(hub):([a-z]+)|(liaison)|(coordinator))$"
)
RESERVED_REGION_TOKENS = {"out", "in", "national"}
UTC_TIME = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?Z$")
BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


class Refused(Exception):
    """A coded refusal; the codes are those of services/shared/src/errors.ts."""

    def __init__(self, code: str, reason: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.field = field
        self.message = message


class SetupError(Exception):
    """The tool cannot run: missing file, library or protoc. Not a verdict on the message."""


def refuse(code: str, reason: str, message: str, field: str = "") -> NoReturn:
    raise Refused(code, reason, message, field)


def info(line: str) -> None:
    print(line, file=sys.stderr)


# --------------------------------------------------------------------------- helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode_canonical(segment: str) -> bytes:
    """Decodes base64url, refusing every spelling but the canonical one.

    Python's decoder (like most) ignores stray characters and the unused low bits of the last
    character, so several strings decode to the same bytes. The reference implementation accepts
    only the canonical spelling, so that a changed character never leaves a message valid.
    """
    if not segment or not BASE64URL.match(segment):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if b64url(data) != segment:
        raise ValueError("not canonical base64url")
    return data


def parse_time_ms(value: str) -> int:
    """RFC 3339 UTC ('T', 'Z') to epoch milliseconds, truncating below the millisecond like
    JavaScript's Date.parse, so that validity comparisons agree with the reference."""
    m = UTC_TIME.match(value)
    if m is None:
        raise ValueError("not an RFC 3339 UTC time")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac = (m.group(7) or ".")[1:]
    ms = int((frac + "000")[:3])
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1000 + ms


def parse_org_id(org_id: str, code: str = "ERR_ADDRESS_INVALID", field: str = "") -> dict[str, str]:
    m = ORG_ID.match(org_id) if isinstance(org_id, str) else None
    if m is None:
        refuse(code, "format", "not a valid organisation id", field)
    country = m.group(1)
    if m.group(2):
        return {"role": "municipality", "country": country, "code": m.group(3)}
    if m.group(4):
        if m.group(5) in RESERVED_REGION_TOKENS:
            refuse(code, "reserved_region", "not a valid organisation id", field)
        return {"role": "hub", "country": country, "region": m.group(5)}
    if m.group(6):
        return {"role": "liaison", "country": country}
    return {"role": "coordinator", "country": country}


def read_json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SetupError(f"cannot read {what} {path}: {e.strerror}") from None
    except ValueError:
        raise SetupError(f"{what} {path} is not JSON") from None


# --------------------------------------------------------------------------- libraries


class Libraries:
    """jwcrypto, jsonschema and the protoc-generated protobuf module, loaded once."""

    def __init__(self, proto: Path, schemas: Path, protoc: str | None) -> None:
        try:
            from jwcrypto import jwe, jwk, jws  # noqa: F401
            from jwcrypto.common import JWException  # noqa: F401
            import jsonschema  # noqa: F401
            from jsonschema import Draft202012Validator  # noqa: F401
            from google.protobuf import json_format  # noqa: F401
        except ImportError as e:
            raise SetupError(
                f"missing Python module ({e.name}); on Debian: apt-get install python3-jwcrypto "
                "python3-protobuf python3-jsonschema (jsonschema >= 4.0 for draft 2020-12)"
            ) from None
        self.jwk = jwk
        self.jws = jws
        self.jwe = jwe
        self.json_format = json_format
        self.pb = self._compile_proto(proto, protoc)
        self._load_schemas(schemas)

    # protoc -> stafett_pb2.py in a temporary directory, imported from there.
    def _compile_proto(self, proto: Path, protoc: str | None) -> Any:
        exe = protoc or shutil.which("protoc")
        if exe is None:
            raise SetupError("protoc not found; on Debian: apt-get install protobuf-compiler")
        if not proto.is_file():
            raise SetupError(f"proto file {proto} not found (use --proto)")
        with tempfile.TemporaryDirectory(prefix="stafett-pb-") as tmp:
            src = Path(tmp, "src", "stafett", "v1")
            src.mkdir(parents=True)
            shutil.copyfile(proto, src / "stafett.proto")
            out = Path(tmp, "out")
            out.mkdir()
            run = subprocess.run(
                [exe, f"--proto_path={Path(tmp, 'src')}", f"--python_out={out}", "stafett/v1/stafett.proto"],
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode != 0:
                raise SetupError(f"protoc failed: {run.stderr.strip()}")
            generated = out / "stafett" / "v1" / "stafett_pb2.py"
            spec = importlib.util.spec_from_file_location("stafett.v1.stafett_pb2", generated)
            if spec is None or spec.loader is None:
                raise SetupError("cannot load the protoc-generated module")
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as e:  # a protoc newer than the protobuf runtime, typically
                raise SetupError(f"protoc-generated code does not load with this protobuf runtime: {e}") from None
            return module

    # Every *.schema.json under schemas/, by $id, so relative $refs resolve offline.
    def _load_schemas(self, schemas: Path) -> None:
        from jsonschema import Draft202012Validator

        files = sorted(schemas.glob("*.schema.json")) + sorted(schemas.glob("events/*.schema.json"))
        if not files:
            raise SetupError(f"no *.schema.json in {schemas} (use --schemas)")
        self.schemas: dict[str, dict[str, Any]] = {}
        for f in files:
            schema = read_json_file(f, "schema")
            Draft202012Validator.check_schema(schema)
            self.schemas[schema["$id"]] = schema
        self.format_checker = Draft202012Validator.FORMAT_CHECKER
        used = set()
        for schema in self.schemas.values():
            used.update(re.findall(r'"format":\s*"([^"]+)"', json.dumps(schema)))
        self.unchecked_formats = sorted(used - set(self.format_checker.checkers))
        try:  # jsonschema >= 4.18
            from referencing import Registry, Resource

            registry = Registry().with_resources(
                (sid, Resource.from_contents(s)) for sid, s in self.schemas.items()
            )
            self._validator_kwargs: dict[str, Any] = {"registry": registry}
        except ImportError:  # jsonschema 4.0 to 4.17
            self._validator_kwargs = {}
        self._validators: dict[str, Any] = {}

    def validator(self, schema_id: str) -> Any:
        from jsonschema import Draft202012Validator, RefResolver

        v = self._validators.get(schema_id)
        if v is None:
            schema = self.schemas.get(schema_id)
            if schema is None:
                raise SetupError(f"schema {schema_id} is not in the schemas directory")
            kwargs = dict(self._validator_kwargs)
            if "registry" not in kwargs:
                kwargs["resolver"] = RefResolver(schema_id, schema, store=self.schemas)
            v = Draft202012Validator(schema, format_checker=self.format_checker, **kwargs)
            self._validators[schema_id] = v
        return v

    def validate(self, schema_id: str, instance: Any, code: str) -> None:
        """Refuses with the JSON pointer and the failed keyword, never the value (which may be
        personal data: jsonschema's own messages quote it)."""
        errors = sorted(self.validator(schema_id).iter_errors(instance), key=lambda e: list(e.absolute_path))
        if not errors:
            return
        first = errors[0]
        pointer = "".join(f"/{p}" for p in first.absolute_path) or "/"
        if first.validator == "required" and isinstance(first.instance, dict):
            missing = [p for p in first.validator_value if p not in first.instance]
            if missing:
                pointer = pointer.rstrip("/") + f"/{missing[0]}"
        refuse(
            code,
            str(first.validator),
            f"{len(errors)} schema problem(s); first at {pointer} fails {first.validator} "
            f"({'/'.join(str(p) for p in first.absolute_schema_path)})",
            pointer,
        )

    def import_public_jwk(self, jwk_json: dict[str, Any], crv: str, code: str) -> Any:
        if not isinstance(jwk_json, dict) or jwk_json.get("kty") != "OKP" or jwk_json.get("crv") != crv:
            refuse(code, "kty", f"key is not an {crv} JWK")
        public = {k: jwk_json[k] for k in ("kty", "crv", "x", "kid", "use", "alg") if k in jwk_json}
        try:
            return self.jwk.JWK(**public)
        except Exception:
            refuse(code, "import_failed", f"{crv} JWK could not be imported")


# --------------------------------------------------------------------------- trust list


def verify_trust_list(lib: Libraries, jws_text: str, anchor_jwk: dict[str, Any]) -> dict[str, Any]:
    code = "ERR_TRUST_LIST_INVALID"
    anchor = lib.import_public_jwk(anchor_jwk, "Ed25519", "ERR_KEY_INVALID")
    anchor_kid = anchor_jwk.get("kid") or anchor.thumbprint()
    parts = jws_text.strip().split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three segments")
        header = json.loads(b64url_decode_canonical(parts[0]))
        b64url_decode_canonical(parts[1])
        b64url_decode_canonical(parts[2])
    except ValueError:
        refuse(code, "format", "trust list is not a compact JWS")
    if not isinstance(header, dict):
        refuse(code, "format", "trust list JWS header is not a JSON object")
    if header.get("kid") != anchor_kid:
        refuse(code, "unknown_anchor", "trust list is not signed by the configured anchor", "kid")
    if header.get("alg") != SIGNING_ALG:
        refuse(code, "alg", "trust list JWS alg must be EdDSA", "alg")
    if header.get("typ") != TRUST_JWS_TYP:
        refuse(code, "typ", f"trust list JWS typ must be {TRUST_JWS_TYP}", "typ")
    if any(k not in ("alg", "kid", "typ") for k in header):
        refuse(code, "header_member", "a trust list's protected header is exactly alg, kid and typ", "typ")
    token = lib.jws.JWS()
    try:
        token.deserialize(".".join(parts))
        token.verify(anchor, alg=SIGNING_ALG)
    except Exception:
        refuse(code, "signature", "trust list signature does not verify")
    try:
        trust = json.loads(token.payload.decode("utf-8"))
    except ValueError:
        refuse(code, "not_json", "trust list payload is not JSON")
    lib.validate("https://stafett.eu/schemas/v1/trust-list.schema.json", trust, code)
    check_trust_consistency(lib, trust)
    return trust


def check_trust_consistency(lib: Libraries, trust: dict[str, Any]) -> None:
    """What the schema cannot say (trust.ts checkConsistency), plus two checks the schema's
    description asks for: the issuer is the country's coordinator, and every kid is its key's
    RFC 7638 thumbprint."""
    code = "ERR_TRUST_LIST_INVALID"
    if trust["issuer"] != f"{trust['country']}:coordinator":
        refuse(code, "issuer", "trust list issuer is not the country's coordinator", "/issuer")
    ids: set[str] = set()
    kids: set[str] = set()
    for i, org in enumerate(trust["organisations"]):
        field = f"/organisations/{i}"
        address = parse_org_id(org["id"], code, field)
        if org["id"] in ids:
            refuse(code, "duplicate_id", "organisation listed twice", field)
        ids.add(org["id"])
        if address["role"] != org["role"]:
            refuse(code, "role", "role does not match the organisation id", field)
        if address["country"] != org["country"] or org["country"] != trust["country"]:
            refuse(code, "country", "organisation is not of the trust list's country", field)
        if address["role"] == "hub" and org.get("region") != address["region"]:
            refuse(code, "region", "hub region does not match its id", field)
        if address["role"] == "municipality" and org.get("municipality") != address["code"]:
            refuse(code, "municipality", "municipality code does not match its id", field)
        for j, key in enumerate(org["keys"]):
            kfield = f"{field}/keys/{j}"
            if key["jwk"]["kid"] != key["kid"]:
                refuse(code, "kid", "key entry kid differs from its JWK kid", kfield)
            if key["kid"] in kids:
                refuse(code, "duplicate_kid", "kid listed twice", kfield)
            kids.add(key["kid"])
            crv = "Ed25519" if key["use"] == "sig" else "X25519"
            if key["jwk"]["crv"] != crv:
                refuse(code, "crv", f"a {key['use']} key must be {crv}", kfield)
            jwk = lib.import_public_jwk(key["jwk"], crv, code)
            if jwk.thumbprint() != key["kid"]:
                refuse(code, "thumbprint", "kid is not the RFC 7638 thumbprint of its key", kfield)


class TrustStore:
    def __init__(self, lib: Libraries, lists: list[dict[str, Any]]) -> None:
        self.lib = lib
        self.own = lists[0]
        self.keys: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        orgs: set[str] = set()
        for trust in lists:
            for org in trust["organisations"]:
                if org["id"] in orgs:
                    refuse("ERR_TRUST_LIST_INVALID", "duplicate_id", "organisation in two trust lists")
                orgs.add(org["id"])
                for key in org["keys"]:
                    self.keys[key["kid"]] = (org, key)
        self.allowed = {
            (rule["from"], t, rule["to"]) for rule in self.own["policy"] for t in rule["types"]
        }

    def signing_key(self, kid: str) -> tuple[dict[str, Any], dict[str, Any], Any]:
        entry = self.keys.get(kid)
        if entry is None or entry[1]["use"] != "sig":
            refuse("ERR_UNKNOWN_KEY", "unknown", "signing key is not in the trust list", "kid")
        org, key = entry
        return org, key, self.lib.import_public_jwk(key["jwk"], "Ed25519", "ERR_KEY_INVALID")

    def may_emit(self, from_role: str, event_type: str, to_role: str) -> bool:
        return (from_role, event_type, to_role) in self.allowed


def check_key_usable(key: dict[str, Any], at_ms: int, relayed: bool = False) -> None:
    # Like the reference: a revoked key is refused whatever time the event claims, since a
    # thief can backdate an event; but an original that a hub or liaison relays was taken by
    # that party while the key was good, so it is refused only when it claims a time at or
    # after the revocation.
    if "revokedAt" in key and (not relayed or parse_time_ms(key["revokedAt"]) <= at_ms):
        refuse("ERR_KEY_REVOKED", "revoked", "key has been revoked", "kid")
    if not (parse_time_ms(key["notBefore"]) <= at_ms <= parse_time_ms(key["notAfter"])):
        refuse("ERR_KEY_NOT_VALID", "outside_validity", "key is not valid at the event's time", "kid")


# --------------------------------------------------------------------------- signatures


def read_jws_header(jws: str) -> dict[str, Any]:
    """The protected header of a detached compact JWS "<protected>..<signature>", unverified."""
    parts = jws.split(".")
    try:
        if len(parts) != 3 or parts[1] != "":
            raise ValueError("not detached")
        b64url_decode_canonical(parts[2])
        header = json.loads(b64url_decode_canonical(parts[0]).decode("utf-8"))
    except ValueError:
        refuse("ERR_SIGNATURE_INVALID", "format", "signature is not a detached compact JWS", "signatures")
    if not isinstance(header, dict):
        refuse("ERR_SIGNATURE_INVALID", "header", "JWS protected header is not a JSON object", "signatures")
    if header.get("alg") != SIGNING_ALG:
        refuse("ERR_ALG_UNSUPPORTED", "alg", "JWS alg must be EdDSA", "signatures")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        refuse("ERR_UNKNOWN_KEY", "missing", "JWS has no kid", "kid")
    # Exactly alg, kid and typ, like the reference: b64 or crit would make libraries disagree on
    # what was signed.
    extra = [k for k in header if k not in ("alg", "kid", "typ")]
    if extra:
        reason = "crit" if "crit" in extra else "header_member"
        refuse("ERR_SIGNATURE_INVALID", reason, "JWS protected header has a member other than alg, kid and typ", "signatures")
    if header.get("typ") != EVENT_JWS_TYP:
        refuse("ERR_SIGNATURE_INVALID", "typ", f"JWS typ must be {EVENT_JWS_TYP}", "signatures")
    return header


def verify_detached(lib: Libraries, jws: str, payload: bytes, key: Any) -> None:
    """RFC 7515 appendix F: put BASE64URL(payload) back between the dots, verify as usual."""
    protected, _, signature = jws.split(".")
    token = lib.jws.JWS()
    try:
        token.deserialize(f"{protected}.{b64url(payload)}.{signature}")
        token.verify(key, alg=SIGNING_ALG)
    except Exception:
        refuse("ERR_SIGNATURE_INVALID", "check_failed", "signature does not verify", "signatures")


# --------------------------------------------------------------------------- protobuf


def reject_unknown_fields(message: Any, field: str) -> None:
    """Unknown fields are invisible in the canonical JSON that is validated, so a sender could
    hide data in them; the reference refuses them, and so does this."""
    try:
        from google.protobuf.unknown_fields import UnknownFieldSet

        unknown = len(UnknownFieldSet(message))
    except ImportError:  # protobuf < 4.21
        unknown = len(message.UnknownFields())
    if unknown:
        refuse("ERR_MALFORMED", "unknown_field", "message has fields that the contract does not define", field)
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        values = value if descriptor.label == descriptor.LABEL_REPEATED else [value]
        for v in values:
            reject_unknown_fields(v, field)


def decode_signed_event(lib: Libraries, data: bytes) -> tuple[bytes, list[str]]:
    from google.protobuf.message import DecodeError

    signed = lib.pb.SignedEvent()
    try:
        signed.ParseFromString(data)
    except DecodeError:
        refuse("ERR_MALFORMED", "not_decodable", "message body is not a protobuf SignedEvent")
    reject_unknown_fields(signed, "signedEvent")
    if not signed.event:
        refuse("ERR_MALFORMED", "missing", "SignedEvent has no event bytes", "event")
    return bytes(signed.event), list(signed.signatures)


def decode_event(lib: Libraries, data: bytes) -> dict[str, Any]:
    from google.protobuf.message import DecodeError

    event = lib.pb.Event()
    try:
        event.ParseFromString(data)
    except DecodeError:
        refuse("ERR_MALFORMED", "not_decodable", "event bytes are not a protobuf Event", "event")
    reject_unknown_fields(event, "event")
    # The canonical JSON: proto3 JSON mapping, lowerCamelCase names, enums by name, bytes as
    # standard base64, fields at their default value omitted.
    return lib.json_format.MessageToDict(event, preserving_proto_field_name=False)


# --------------------------------------------------------------------------- the message


class Verifier:
    def __init__(self, lib: Libraries, trust: TrustStore, now_ms: int, max_age_ms: int | None) -> None:
        self.lib = lib
        self.trust = trust
        self.now_ms = now_ms
        self.max_age_ms = max_age_ms

    def verify(self, data: bytes, depth: int = 0, relayed_by: str | None = None) -> dict[str, Any]:
        """Returns {event, issuer, countersigners, original?}; raises Refused."""
        if len(data) > MAX_BYTES:
            refuse("ERR_OVERSIZE", "too_large", f"message is larger than {MAX_BYTES} bytes")
        event_bytes, signatures = decode_signed_event(self.lib, data)
        if not signatures:
            refuse("ERR_SIGNATURE_MISSING", "missing", "event is not signed", "signatures")
        label = "relayed event: " if depth else ""

        # 1. The issuer's signature over the exact bytes, before anything in them is believed.
        header = read_jws_header(signatures[0])
        org, key, handle = self.trust.signing_key(header["kid"])
        verify_detached(self.lib, signatures[0], event_bytes, handle)
        info(f"ok: {label}signature 0 (issuer) verifies with kid {header['kid']} of {org['id']}")

        # 2. Decode and validate against the contract.
        event = decode_event(self.lib, event_bytes)
        event_type = event.get("type")
        if event_type not in EVENT_TYPES:
            refuse("ERR_SCHEMA_INVALID", "enum", "event type is not one of the eleven", "/type")
        self.lib.validate(f"https://stafett.eu/schemas/v1/events/{event_type}.schema.json", event, "ERR_SCHEMA_INVALID")
        info(f"ok: {label}{event_type} {event['id']} is valid against {event_type}.schema.json")

        # 3. Trust: key valid at the event's time, issuer owns the key, the role may send this.
        time_ms = parse_time_ms(event["time"])
        if time_ms > self.now_ms + FUTURE_SKEW_MS:
            refuse("ERR_STALE", "future", "event time is in the future", "/time")
        if self.max_age_ms is not None and time_ms < self.now_ms - self.max_age_ms:
            refuse("ERR_STALE", "too_old", "event is too old (see --max-age-days)", "/time")
        check_key_usable(key, time_ms, relayed_by in ("hub", "liaison"))
        if event["source"] != org["id"]:
            refuse("ERR_ISSUER_MISMATCH", "mismatch", "event source is not the signing key's owner", "/source")
        addressee_role = parse_org_id(event["addressee"])["role"]
        if not self.trust.may_emit(org["role"], event_type, addressee_role):
            refuse(
                "ERR_NOT_AUTHORISED", "policy", f"a {org['role']} may not send {event_type} to a {addressee_role}", "/type"
            )
        info(f"ok: {label}issuer {org['id']} ({org['role']}) owns the key, valid at {event['time']}")

        # 4. Countersignatures: liaisons only; one from the issuer's own liaison is required when
        # the event comes from another country than the own trust list's.
        countersigners: list[dict[str, Any]] = []
        for i, jws in enumerate(signatures[1:], start=1):
            try:
                counter_org, counter_key, counter_handle = self.trust.signing_key(read_jws_header(jws)["kid"])
                verify_detached(self.lib, jws, event_bytes, counter_handle)
                # The reference checks a countersigning key at the time of checking: the
                # countersignature is made when the event is relayed, not at the event's time.
                check_key_usable(counter_key, self.now_ms)
            except Refused as cause:
                refuse(
                    "ERR_COUNTERSIGNATURE_INVALID", cause.reason, f"countersignature {i} does not verify", "signatures"
                )
            if counter_org["role"] != "liaison":
                refuse(
                    "ERR_COUNTERSIGNATURE_INVALID", "not_liaison", "only a national liaison may countersign", "signatures"
                )
            countersigners.append(counter_org)
            info(f"ok: {label}signature {i} (countersignature) verifies, by {counter_org['id']}")
        issuer_country = parse_org_id(event["source"])["country"]
        if depth == 0 and issuer_country != self.trust.own["country"] and org["role"] != "liaison":
            if not any(c["country"] == issuer_country for c in countersigners):
                refuse(
                    "ERR_COUNTERSIGNATURE_MISSING",
                    "missing",
                    "an event from abroad needs its country's liaison's countersignature",
                    "signatures",
                )

        result: dict[str, Any] = {"event": event, "issuer": org, "countersigners": countersigners}
        # 5. A relayed event is verified in full too.
        if event_type == "forwarded":
            if depth > 0:
                refuse(
                    "ERR_MALFORMED", "nested_forward", "a forwarded event may not relay another forward", "/forwarded/original"
                )
            original = self.verify(
                base64.b64decode(event["forwarded"]["original"], validate=True), depth + 1, org["role"]
            )
            if original["event"]["referralId"] != event["referralId"]:
                refuse(
                    "ERR_MALFORMED", "referral_mismatch", "relayed event belongs to another referral", "/forwarded/original"
                )
            result["original"] = original
        return result


def sealed_personal(verified: dict[str, Any]) -> str | None:
    event = verified["event"]
    if "forwarded" in event:
        if "personal" in event["forwarded"]:
            return event["forwarded"]["personal"]
        event = verified["original"]["event"]
    return (event.get("opened") or event.get("updated") or {}).get("personal")


def open_personal(lib: Libraries, sealed: str, reader: Any, reader_kid: str, referral_id: str) -> Any:
    """Decrypts the JWE (general JSON serialization) for the one recipient named `reader_kid`."""
    try:
        jwe = json.loads(sealed)
    except ValueError:
        refuse("ERR_MALFORMED", "not_json", "sealed part is not a JWE JSON serialization", "personal")
    if not isinstance(jwe, dict) or not isinstance(jwe.get("recipients"), list) or not isinstance(jwe.get("ciphertext"), str):
        refuse("ERR_MALFORMED", "not_jwe", "sealed part is not a JWE general JSON serialization", "personal")
    recipient = next(
        (r for r in jwe["recipients"] if isinstance(r, dict) and (r.get("header") or {}).get("kid") == reader_kid), None
    )
    if recipient is None:
        refuse("ERR_NOT_RECIPIENT", "not_recipient", "the key is not a recipient of the sealed part", "personal")
    # The JWE's AAD binds it to its referral: a sealed part cannot be moved into another one.
    if jwe.get("aad") != b64url(referral_id.encode("utf-8")):
        refuse("ERR_DECRYPT_FAILED", "aad_mismatch", "sealed part belongs to another referral", "personal")
    flattened = {k: jwe[k] for k in ("protected", "unprotected", "iv", "ciphertext", "tag", "aad") if k in jwe}
    flattened.update({k: recipient[k] for k in ("header", "encrypted_key") if k in recipient})
    token = lib.jwe.JWE()
    token.allowed_algs = [KEY_WRAP_ALG, CONTENT_ENC]
    try:
        token.deserialize(json.dumps(flattened))
        if "zip" in token.jose_header:
            raise ValueError("compressed")
        token.decrypt(reader)
        plaintext = token.payload
    except Exception:
        refuse("ERR_DECRYPT_FAILED", "check_failed", "sealed part does not decrypt", "personal")
    try:
        return json.loads(plaintext.decode("utf-8"))
    except ValueError:
        refuse("ERR_PERSONAL_INVALID", "not_json", "sealed part is not UTF-8 JSON", "personal")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    repo = here.parent.parent
    p = argparse.ArgumentParser(
        description="Verify and decode a Stafett SignedEvent with stock libraries "
        "(jwcrypto, protobuf, jsonschema). Exit 0: verified; 1: refused; 2: usage or set-up.",
    )
    p.add_argument("--trust", type=Path, action="append", required=True,
                   help="trust list (compact JWS); repeat for partner countries' lists, own list first")
    p.add_argument("--anchor", type=Path, action="append", required=True,
                   help="anchor public JWK that signed the --trust of the same position")
    p.add_argument("--message", type=Path, required=True, help="the NATS message body (SignedEvent bytes)")
    p.add_argument("--enc-key", type=Path, help="a recipient's private X25519 JWK: decrypt the personal part")
    p.add_argument("--schemas", type=Path, default=repo / "schemas", help="the schemas/ directory")
    p.add_argument("--proto", type=Path, default=repo / "proto" / "stafett" / "v1" / "stafett.proto",
                   help="stafett.proto, compiled with protoc at run time")
    p.add_argument("--protoc", help="the protoc to use (default: protoc on PATH)")
    p.add_argument("--max-age-days", type=float, default=DEFAULT_MAX_AGE_DAYS,
                   help=f"refuse events older than this (default {DEFAULT_MAX_AGE_DAYS}, as the reference "
                   "receiver; 0 turns the check off, e.g. for archived messages)")
    args = p.parse_args(argv)
    if len(args.trust) != len(args.anchor):
        p.error("give one --anchor per --trust, in the same order")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        lib = Libraries(args.proto, args.schemas, args.protoc)
        if lib.unchecked_formats:
            info(
                "note: this jsonschema install does not check format "
                + ", ".join(lib.unchecked_formats)
                + " (the schemas' patterns still apply)"
            )
        anchors = [read_json_file(a, "anchor JWK") for a in args.anchor]
        trust_texts = []
        for t in args.trust:
            try:
                trust_texts.append(t.read_text(encoding="utf-8"))
            except OSError as e:
                raise SetupError(f"cannot read trust list {t}: {e.strerror}") from None
        try:
            message = args.message.read_bytes()
        except OSError as e:
            raise SetupError(f"cannot read message {args.message}: {e.strerror}") from None
        enc_jwk = read_json_file(args.enc_key, "encryption key") if args.enc_key else None
    except SetupError as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 2

    try:
        lists = []
        for text, anchor in zip(trust_texts, anchors):
            trust = verify_trust_list(lib, text, anchor)
            info(
                f"ok: trust list {trust['country']} v{trust['version']} ({len(trust['organisations'])} "
                f"organisations) verifies with anchor {anchor.get('kid')}"
            )
            lists.append(trust)
        store = TrustStore(lib, lists)
        max_age = int(args.max_age_days * 86_400_000) if args.max_age_days > 0 else None
        verified = Verifier(lib, store, int(time.time() * 1000), max_age).verify(message)
        event = verified["event"]

        if enc_jwk is not None:
            if not isinstance(enc_jwk, dict) or enc_jwk.get("crv") != "X25519" or "d" not in enc_jwk:
                refuse("ERR_KEY_INVALID", "kty", "--enc-key is not a private X25519 JWK")
            try:
                reader = lib.jwk.JWK(**enc_jwk)
            except Exception:
                refuse("ERR_KEY_INVALID", "import_failed", "--enc-key could not be imported")
            reader_kid = enc_jwk.get("kid") or reader.thumbprint()
            sealed = sealed_personal(verified)
            if sealed is None:
                refuse("ERR_MALFORMED", "no_personal", "this event has no sealed personal part", "personal")
            personal = open_personal(lib, sealed, reader, reader_kid, event["referralId"])
            lib.validate("https://stafett.eu/schemas/v1/personal.schema.json", personal, "ERR_PERSONAL_INVALID")
            # Personal data: the keys only, never a value.
            info(
                f"ok: personal part decrypts for kid {reader_kid} and is valid against personal.schema.json; "
                f"top-level keys: {', '.join(personal.keys())}"
            )
    except Refused as r:
        print(f"REFUSED {r.code} ({r.reason}) at {r.field or '-'}: {r.message}", file=sys.stderr)
        return 1
    except SetupError as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 2

    print(json.dumps(event, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Schemathesis hooks for herald's native API: every request is authenticated as the operation
documents it (admin bearer token, client bearer token, or the HMAC signature of the signed API),
and what the fuzzer may make herald do is kept on this machine.

The run's credentials come from the environment, set by run.py:
HERALD_CONTRACT_ADMIN_TOKEN, HERALD_CONTRACT_APP_ID, HERALD_CONTRACT_APP_KEY,
HERALD_CONTRACT_APP_SECRET, HERALD_CONTRACT_SPARE_APP_ID, HERALD_CONTRACT_CLIENT_TOKEN.
"""

import hashlib
import hmac
import itertools
import os
import time
from urllib.parse import urlsplit

import requests
import schemathesis
from schemathesis.transport.prepare import get_exclude_headers

ENV = os.environ
_nonces = itertools.count()


def canonical(method, path, query, timestamp, nonce, body):
    """The string herald signs (herald_core::signature): METHOD, PATH, QUERY, TIMESTAMP, NONCE and
    hex(sha256(BODY)), one per line."""
    digest = hashlib.sha256(body or b"").hexdigest()
    return f"{method.upper()}\n{path}\n{query}\n{timestamp}\n{nonce}\n{digest}"


def sign_headers(key, secret, method, url, body):
    """The four x-herald-* headers of a signed request to `url` (path and raw query as sent)."""
    if isinstance(body, str):
        body = body.encode()
    parts = urlsplit(url)
    timestamp = str(int(time.time()))
    nonce = f"contract-{os.getpid()}-{next(_nonces)}"
    text = canonical(method, parts.path, parts.query, timestamp, nonce, body)
    signature = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {
        "x-herald-key": key,
        "x-herald-timestamp": timestamp,
        "x-herald-nonce": nonce,
        "x-herald-signature": signature,
    }


class SignRequest(requests.auth.AuthBase):
    """Signs the request as `requests` prepared it: the exact path, query and body bytes sent."""

    def __init__(self, key, secret):
        self.key, self.secret = key, secret

    def __call__(self, request):
        request.headers.update(
            sign_headers(self.key, self.secret, request.method, request.url, request.body)
        )
        return request


def security_of(case):
    """The name of the operation's security scheme: `signature`, `admin_token`, `client_token`
    or None."""
    for requirement in case.operation.definition.raw.get("security", []):
        for name in requirement:
            return name
    return None


@schemathesis.auth()
class HeraldAuth:
    """Credentials per operation. The signature itself is computed when the request is sent
    (`before_call`), over the bytes requests will send."""

    def get(self, case, context):
        return {
            "admin_token": ENV["HERALD_CONTRACT_ADMIN_TOKEN"],
            "client_token": ENV["HERALD_CONTRACT_CLIENT_TOKEN"],
        }

    def set(self, case, data, context):
        scheme = security_of(case)
        case.headers = case.headers or {}
        if scheme in ("admin_token", "client_token"):
            case.headers["Authorization"] = f"Bearer {data[scheme]}"


@schemathesis.hook
def before_call(context, case, kwargs):
    # A negative case that leaves the signature header out must reach herald without one.
    excluded = {name.lower() for name in get_exclude_headers(case)}
    if security_of(case) == "signature" and "x-herald-signature" not in excluded:
        kwargs["auth"] = SignRequest(ENV["HERALD_CONTRACT_APP_KEY"], ENV["HERALD_CONTRACT_APP_SECRET"])


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    # The admin routes may delete or rotate any app they are given: never the app the signed
    # calls use, the spare app instead.
    if path_parameters and str(path_parameters.get("id")) == ENV["HERALD_CONTRACT_APP_ID"]:
        path_parameters["id"] = int(ENV["HERALD_CONTRACT_SPARE_APP_ID"])
    return path_parameters


@schemathesis.hook
def map_body(context, body):
    # A webhook URL is where herald posts events: kept on this machine, whatever was generated.
    # Only URLs herald would accept are replaced, so that invalid ones still test the refusal.
    if context.operation and context.operation.path == "/v1/webhook" and isinstance(body, dict):
        url = body.get("url")
        if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
            body["url"] = "http://127.0.0.1:9/contract-hook"
    return body

"""Contract fuzzing of herald's native API: starts the herald binary on this machine, makes an
app and a client token, and runs schemathesis against /openapi.json with the hooks of hooks.py.

    python3 crates/herald-server/contract/run.py [--binary target/debug/herald] [-- st options]

Prefer run.sh, which runs this inside a network namespace of its own, so that nothing the
fuzzer makes herald do (webhooks, vendor sends) can leave the machine.
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hooks import sign_headers  # noqa: E402

# Generous limits: the fuzzer sends hundreds of requests and pushes a second.
LIMITS = {
    "broadcast_min_interval_secs": 0,
    "broadcast_daily_quota": 1000000,
    "requests_per_second": 1000000,
}


def call(base, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(base + path, data=data if body is not None else None, method=method)
    req.add_header("content-type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.load(res)


def start(binary, data, admin_token, config):
    env = dict(os.environ, HERALD_ADMIN_TOKEN=admin_token, HERALD_LOG_LEVEL="warn")
    proc = subprocess.Popen(
        [binary, "serve", "--data", data, "--listen", "127.0.0.1:0", "--config", config],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("herald listening on "):
            return proc, line.split("herald listening on ", 1)[1].strip()
    raise SystemExit("herald did not start")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/debug/herald")
    parser.add_argument("st_args", nargs="*", help="options passed to `st run`")
    args = parser.parse_args()

    admin_token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "herald.toml")
        # Vendors point at a closed port of this machine.
        with open(config, "w") as f:
            f.write(
                '[vendor.apns]\nproduction_url = "https://127.0.0.1:9"\nsandbox_url = "https://127.0.0.1:9"\n'
                '[vendor.fcm]\nbase_url = "https://127.0.0.1:9"\ntoken_uri = "https://127.0.0.1:9/token"\n'
            )
        proc, base = start(args.binary, os.path.join(tmp, "data"), admin_token, config)
        try:
            admin = {"authorization": f"Bearer {admin_token}"}
            app = call(base, "POST", "/admin/apps", {"name": "contract", "limits": LIMITS}, admin)
            spare = call(base, "POST", "/admin/apps", {"name": "spare", "limits": LIMITS}, admin)
            body = json.dumps({"account": "contract-user"})
            signed = sign_headers(app["key"], app["secret"], "POST", base + "/v1/client-tokens", body)
            token = call(base, "POST", "/v1/client-tokens", json.loads(body), signed)["token"]
            env = dict(
                os.environ,
                SCHEMATHESIS_HOOKS="hooks",
                PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""),
                HERALD_CONTRACT_ADMIN_TOKEN=admin_token,
                HERALD_CONTRACT_APP_ID=str(app["id"]),
                HERALD_CONTRACT_APP_KEY=app["key"],
                HERALD_CONTRACT_APP_SECRET=app["secret"],
                HERALD_CONTRACT_SPARE_APP_ID=str(spare["id"]),
                HERALD_CONTRACT_CLIENT_TOKEN=token,
            )
            started = time.monotonic()
            st = subprocess.run(["st", "run", base + "/openapi.json", *args.st_args], env=env)
            print(f"schemathesis ran {time.monotonic() - started:.0f} s, exit {st.returncode}")
            if proc.poll() is not None:
                raise SystemExit(f"herald died during the run (exit {proc.returncode})")
            return st.returncode
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())

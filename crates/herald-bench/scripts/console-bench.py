#!/usr/bin/env python3
"""Console page times for a large app: a fresh release herald (SQLite), one app with the
accounts of an import file (import-file.py), PUSHES pushes (one to everyone, the others to a
few accounts each), then each console page fetched REPEAT times by a signed-in admin; prints
the median and the slowest time to the last byte per page, in milliseconds.

    python3 crates/herald-bench/scripts/import-file.py 1000000 > /tmp/users1m.ndjson
    python3 crates/herald-bench/scripts/console-bench.py /tmp/users1m.ndjson

Environment: HERALD_BIN (default target/release/herald), PUSHES (10000), REPEAT (7).
"""
import hashlib
import hmac
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERALD = os.environ.get("HERALD_BIN", "target/release/herald")
PUSHES = int(os.environ.get("PUSHES", "10000"))
REPEAT = int(os.environ.get("REPEAT", "7"))
ADMIN = "bench-admin-token-0123456789"


class Signed:
    """The signed app API (docs: README, "Sign a request")."""

    def __init__(self, base, key, secret):
        self.base, self.key, self.secret = base, key, secret

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        bare, _, query = path.partition("?")
        stamp, nonce = str(int(time.time())), secrets.token_hex(12)
        canonical = "\n".join(
            [method, bare, query, stamp, nonce, hashlib.sha256(data).hexdigest()]
        )
        signature = hmac.new(self.secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
        request = urllib.request.Request(self.base + path, data=data or None, method=method)
        for name, value in [
            ("x-herald-key", self.key),
            ("x-herald-timestamp", stamp),
            ("x-herald-nonce", nonce),
            ("x-herald-signature", signature),
            ("content-type", "application/json"),
        ]:
            request.add_header(name, value)
        with urllib.request.urlopen(request) as answer:
            return json.loads(answer.read() or b"null")


def herald(*args, env):
    return subprocess.run([HERALD, *args], env=env, check=True, capture_output=True, text=True)


def main():
    file = sys.argv[1]
    data = tempfile.mkdtemp()
    port = 32000 + secrets.randbelow(8000)
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HERALD_ADMIN_TOKEN=ADMIN, HERALD_SERVER=base)
    server = subprocess.Popen(
        [HERALD, "serve", "--data", data, "--listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        limits = {"accounts_per_batch": 10000, "broadcast_daily_quota": 1000000,
                  "broadcast_min_interval_secs": 0, "requests_per_second": 100000}
        app = json.loads(herald("app", "create", "--name", "console", "--limits",
                                json.dumps(limits), "--json", env=env).stdout)
        env.update(HERALD_APP_KEY=app["key"], HERALD_APP_SECRET=app["secret"])
        herald("attr", "names", *[f"--set={n}=a{n}" for n in range(10)], env=env)
        started = time.time()
        subprocess.run([HERALD, "account", "import", "--file", file], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        print(f"imported {file} in {time.time() - started:.1f} s")
        api = Signed(base, app["key"], app["secret"])
        started = time.time()
        everyone = api.call("POST", "/v1/pushes", {"audience": {"all": True},
                                                   "message": {"n": 0},
                                                   "notification": {"title": "Sale", "body": "50% off"}})
        for n in range(1, PUSHES):
            accounts = [f"user{(n * 7 + k) % 1000000:08}" for k in range(3)]
            api.call("POST", "/v1/pushes", {"audience": {"accounts": accounts}, "message": {"n": n}})
        print(f"{PUSHES} pushes sent in {time.time() - started:.1f} s")
        time.sleep(3)  # the last pushes dispatched, the receipts flushed
        times = measure(base, app["id"], everyone["push_id"])
        print(f"\n| page | median ms | slowest ms |\n|---|---:|---:|")
        for page, samples in times.items():
            print(f"| {page} | {statistics.median(samples):.1f} | {max(samples):.1f} |")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


def measure(base, app, push_id):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/console/signin").read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrf": csrf, "admin_token": ADMIN}).encode()
    opener.open(base + "/console/signin", data=form).read()
    signed_in = opener.open(f"{base}/console/?app={app}").read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', signed_in).group(1)
    pages = {
        "overview": f"/console/?app={app}",
        "pushes": f"/console/pushes?app={app}",
        "pushes, text filter": f"/console/pushes?app={app}&q=Sale",
        "report (the push to everyone)": f"/console/report?app={app}&push={push_id}",
        "report CSV": f"/console/report.csv?app={app}&push={push_id}",
        "compose": f"/console/compose?app={app}",
        "devices (account lookup)": f"/console/devices?app={app}&account=user00000042",
        "settings": f"/console/settings?app={app}",
    }
    times = {}
    for name, path in pages.items():
        times[name] = [fetch(opener, base + path) for _ in range(REPEAT)]
    estimate = urllib.parse.urlencode({
        "csrf": csrf, "app": app, "audience": "conditions", "tags_any": "tag0001 tag0002",
        "tags_none": "tag0003",
    }).encode()
    times["estimate (tag OR, NOT)"] = [
        fetch(opener, f"{base}/console/estimate?app={app}", estimate) for _ in range(REPEAT)
    ]
    return times


def fetch(opener, url, data=None):
    request = urllib.request.Request(url, data=data)
    if data is not None:
        request.add_header("HX-Request", "true")
    started = time.perf_counter()
    with opener.open(request) as answer:
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{url}: {answer.status}")
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes an NDJSON import file for `herald account import --file`: N accounts, each with
20 tags out of a vocabulary of 2,000 and a value for each of 10 attributes (a0..a9), the
shape of a migration from another push service. Deterministic for a given N.

    python3 import-file.py 1000000 > /tmp/users.ndjson
"""
import json
import random
import sys

TAGS_PER_ACCOUNT = 20
VOCABULARY = [f"tag{n:04}" for n in range(2000)]
ATTRIBUTES = [f"a{n}" for n in range(10)]
VALUES = [f"v{n:02}" for n in range(30)]


def main() -> None:
    count = int(sys.argv[1])
    rng = random.Random(count)
    out = sys.stdout
    for n in range(count):
        line = {
            "account": f"user{n:08}",
            "tags": rng.sample(VOCABULARY, TAGS_PER_ACCOUNT),
            "attributes": {name: rng.choice(VALUES) for name in ATTRIBUTES},
        }
        out.write(json.dumps(line, separators=(",", ":")))
        out.write("\n")


if __name__ == "__main__":
    main()

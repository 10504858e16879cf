"""Runs the Autobahn|Testsuite cases against a WebSocket echo endpoint.

Usage: fuzzingclient.py --spec SPEC --url ws://HOST:PORT/ --outdir DIR

The cases are Autobahn's own, driven by the kosoku runner (PyPI), which
runs them on Python 3 (autobahntestsuite itself runs only on Python 2).
SPEC takes Autobahn's keys "cases" and "exclude-cases" (ids or globs such
as "9.*"); CHAT_AUTOBAHN_EXCLUDE adds more exclusions, separated by
spaces.  The reports (index.json, one JSON and one HTML file per case,
index.html) go to DIR.  The exit status is 0 when every case ran, whatever
the verdicts: the caller judges index.json.
"""

import argparse
import asyncio
import json
import os
import sys

import kosoku
from kosoku._report import write_reports


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--parallelism", type=int,
                    default=int(os.environ.get("CHAT_AUTOBAHN_PARALLELISM",
                                               "4")))
    args = ap.parse_args()

    with open(args.spec) as f:
        spec = json.load(f)

    cases = spec.get("cases") or ["*"]
    exclude = list(spec.get("exclude-cases") or [])
    exclude += os.environ.get("CHAT_AUTOBAHN_EXCLUDE", "").split()

    try:
        results = asyncio.run(kosoku.run_fuzzingclient(
            args.url, cases, exclude or None,
            concurrency=args.parallelism))
    except kosoku.FailureError as e:
        results = e.results

    if not results:
        print("autobahn: no case ran", file=sys.stderr)
        return 1

    write_reports(results, args.outdir)
    print("autobahn: %d cases, reports in %s" % (len(results), args.outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())

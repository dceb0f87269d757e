"""Runs check_dashboard.py against fake_api.py: the page and the browser test in about 15 s, with
no Rust build and no stack. Arguments after the options go to check_dashboard.py (for example
`--width 375 --screenshot var/dashboard-phone.png`).

usage: check_against_fake.py [--data CSV] [check_dashboard.py options...]
Exit status: check_dashboard.py's.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Produces the quote the live check waits for, through the fake's /fake/produce.
PRODUCE = (
    "import json, os, urllib.request; "
    "body = json.dumps({'symbol': os.environ['LIVE_SYMBOL'], 'trade_date': os.environ['LIVE_DATE'], "
    "'open': 101.0, 'high': 102.5, 'low': 100.25, 'close': 101.5, 'volume': 1200}).encode(); "
    "urllib.request.urlopen(urllib.request.Request(os.environ['BASE_URL'] + '/fake/produce', data=body), timeout=10)"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("STOCKSTREAM_TEST_DATA"),
                        help="dataset CSV for the fake (default $STOCKSTREAM_TEST_DATA)")
    args, rest = parser.parse_known_args()
    if not args.data:
        parser.error("no dataset: pass --data CSV or set STOCKSTREAM_TEST_DATA")
    fake = subprocess.Popen([sys.executable, str(HERE / "fake_api.py"), "--port", "0", "--data", args.data],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = fake.stdout.readline().strip()
        if not line.startswith("listening on "):
            print(f"check_against_fake: the fake API did not start ({line!r})", file=sys.stderr)
            return 2
        base_url = line.removeprefix("listening on ")
        command = [sys.executable, str(HERE / "check_dashboard.py"), base_url,
                   "--live", "LIVE:2010-01-12", "--produce-command", f"{shlex.quote(sys.executable)} -c {shlex.quote(PRODUCE)}", *rest]
        return subprocess.run(command, check=False).returncode
    finally:
        fake.terminate()
        fake.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Prints the host's #cloud-config from infra/stockstream.yaml with example values in place of
the stack's (`${LakeBucket}` becomes `example-lakebucket`), for `cloud-init schema` offline.
The moto test (tests/tests/infra_stack.rs) checks the user data CloudFormation itself rendered.

    scripts/infra-user-data.py [infra/stockstream.yaml] > user-data.yaml
"""
import pathlib
import re
import sys

from cfnlint.decode.cfn_yaml import load

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    template = load(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "infra/stockstream.yaml"))
    user_data = template["Resources"]["Host"]["Properties"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    text = user_data[0] if isinstance(user_data, list) else user_data

    def example(match):
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        return "example-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")

    sys.stdout.write(re.sub(r"\$\{([^}]+)\}", example, text))


if __name__ == "__main__":
    main()

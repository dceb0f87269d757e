#!/usr/bin/env python3
"""Offline dependency policy check: licences, bans and sources, from deny.toml.

What `cargo deny check licenses bans sources` checks, for the crates this workspace builds on this
platform (Cargo.lock through `cargo metadata --locked --filter-platform <host>`), without
cargo-deny's advisory database or a download:

- licences: each crate's SPDX expression (`/` read as OR) must be satisfiable with the licences in
  `[licenses] allow`; a crate without a licence expression fails;
- bans: no crate named in `[bans] deny`; no `*` version requirement (`wildcards = "deny"`); crates
  present in several versions are listed (`multiple-versions = "warn"`);
- sources: every crate comes from the workspace or an allowed registry (`[sources]`); no git.

Exit status 1 with one line per problem; 0 with a summary line otherwise.
"""

import json
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES_IO = "https://github.com/rust-lang/crates.io-index"


class Spdx:
    """A tiny SPDX expression evaluator: OR, AND, WITH, parentheses, `+` suffixes."""

    def __init__(self, text):
        spaced = text.replace("(", " ( ").replace(")", " ) ").replace("/", " OR ")
        self.tokens = spaced.split()
        self.at = 0

    def peek(self):
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self):
        token = self.peek()
        self.at += 1
        return token

    def allowed(self, allow):
        result = self.expression(allow)
        if self.peek() is not None:
            raise ValueError(f"unexpected `{self.peek()}`")
        return result

    def expression(self, allow):
        result = self.term(allow)
        while self.peek() == "OR":
            self.take()
            result = self.term(allow) or result
        return result

    def term(self, allow):
        result = self.factor(allow)
        while self.peek() == "AND":
            self.take()
            result = self.factor(allow) and result
        return result

    def factor(self, allow):
        token = self.take()
        if token is None:
            raise ValueError("the expression ends early")
        if token == "(":
            result = self.expression(allow)
            if self.take() != ")":
                raise ValueError("unbalanced parentheses")
            return result
        if token in ("AND", "OR", "WITH", ")"):
            raise ValueError(f"unexpected `{token}`")
        licence = token.rstrip("+")
        if self.peek() == "WITH":
            self.take()
            exception = self.take()
            return f"{licence} WITH {exception}" in allow
        return licence in allow


def host_triple():
    output = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    match = re.search(r"^host: (\S+)$", output, re.MULTILINE)
    if not match:
        sys.exit("check-deps: cannot tell the host platform from `rustc -vV`")
    return match.group(1)


def main():
    policy = tomllib.loads((ROOT / "deny.toml").read_text())
    allow = set(policy["licenses"]["allow"])
    bans = {entry["name"]: entry.get("reason", "banned") for entry in policy["bans"].get("deny", [])}
    registries = set(policy["sources"].get("allow-registry", [CRATES_IO]))
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", host_triple()],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    members = set(metadata["workspace_members"])
    resolved = {node["id"] for node in metadata["resolve"]["nodes"]}
    packages = [package for package in metadata["packages"] if package["id"] in resolved]

    problems = []
    versions = defaultdict(set)
    for package in packages:
        name, version = package["name"], package["version"]
        versions[name].add(version)
        label = f"{name} {version}"
        if package["id"] in members:
            for dependency in package["dependencies"]:
                # Path dependencies inside the workspace carry no version (cargo-deny's
                # `allow-wildcard-paths`); a registry dependency must name one.
                wildcard = dependency["req"] == "*" and not dependency.get("path")
                if wildcard and policy["bans"].get("wildcards") == "deny":
                    problems.append(f"wildcard: {name} depends on {dependency['name']} = \"*\"")
            continue
        licence = package.get("license")
        if not licence:
            problems.append(f"licence: {label} declares no SPDX licence expression")
        else:
            try:
                if not Spdx(licence).allowed(allow):
                    problems.append(f"licence: {label} is `{licence}`, not allowed by deny.toml")
            except ValueError as error:
                problems.append(f"licence: {label} has an unreadable expression `{licence}`: {error}")
        if name in bans:
            problems.append(f"banned: {label} ({bans[name]})")
        source = package.get("source") or ""
        if source.startswith("git+"):
            problems.append(f"source: {label} comes from git ({source})")
        elif source.startswith("registry+") or source.startswith("sparse+"):
            registry = source.split("+", 1)[1]
            if registry not in registries and not (registry.startswith("https://index.crates.io") and CRATES_IO in registries):
                problems.append(f"source: {label} comes from an unknown registry {registry}")
        elif not source:
            problems.append(f"source: {label} is a path dependency outside the workspace")
        else:
            problems.append(f"source: {label} comes from an unknown source {source}")

    duplicated = sorted(name for name, found in versions.items() if len(found) > 1)
    for problem in problems:
        print(f"check-deps: {problem}")
    if problems:
        print(f"check-deps: {len(problems)} problem(s) in {len(packages)} crates (policy: deny.toml)")
        return 1
    print(
        f"check-deps: {len(packages) - len(members)} crates ok: licences allowed, none banned, "
        f"all from crates.io; {len(duplicated)} crates in several versions (warning only"
        + (f": {', '.join(duplicated[:12])}{', …' if len(duplicated) > 12 else ''})" if duplicated else ")")
    )
    return 0


def self_test():
    """The evaluator on expressions met in the wild; run by `make lint` before the real check."""
    allow = {"MIT", "Apache-2.0", "ISC", "Apache-2.0 WITH LLVM-exception"}
    cases = [
        ("MIT OR GPL-3.0", True),
        ("GPL-3.0", False),
        ("MIT AND GPL-3.0", False),
        ("(MIT OR Apache-2.0) AND ISC", True),
        ("MIT/Apache-2.0", True),
        ("Apache-2.0 WITH LLVM-exception", True),
        ("GPL-2.0 WITH Classpath-exception-2.0", False),
        ("LGPL-2.1-or-later OR MIT", True),
        ("ISC AND (Apache-2.0 OR ISC) AND GPL-2.0", False),
        ("Apache-2.0+", True),
    ]
    for expression, expected in cases:
        found = Spdx(expression).allowed(allow)
        assert found == expected, f"{expression}: {found}, expected {expected}"
    for broken in ["MIT AND", "(MIT", "OR MIT", "MIT MIT"]:
        try:
            Spdx(broken).allowed(allow)
        except ValueError:
            continue
        raise AssertionError(f"`{broken}` was accepted")
    print(f"check-deps: self-test passed ({len(cases) + 4} expressions)")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        sys.exit(0)
    sys.exit(main())

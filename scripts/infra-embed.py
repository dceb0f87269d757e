#!/usr/bin/env python3
"""Copies infra/bootstrap.py into the #cloud-config user data of infra/stockstream.yaml, which
must stay one self-contained template (`aws cloudformation deploy` takes one file).

    scripts/infra-embed.py          rewrite the template
    scripts/infra-embed.py --check  exit 1 if the template's copy differs (make test runs this)
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra/stockstream.yaml"
SCRIPT = ROOT / "infra/bootstrap.py"
ENTRY = "- path: /usr/local/sbin/stockstream-bootstrap"


def embedded(lines):
    """(first, end) line indexes of the script inside the template, and its indentation."""
    start = next(i for i, line in enumerate(lines) if line.strip() == ENTRY)
    entry_indent = len(lines[start]) - len(lines[start].lstrip())
    content = next(i for i in range(start, len(lines)) if lines[i].strip() == "content: |")
    indent = len(lines[content]) - len(lines[content].lstrip()) + 2
    end = content + 1
    while end < len(lines) and (not lines[end].strip()
                                or len(lines[end]) - len(lines[end].lstrip()) > entry_indent):
        end += 1
    while not lines[end - 1].strip():
        end -= 1
    return content + 1, end, indent


def main():
    script = SCRIPT.read_text()
    if "${" in script:
        sys.exit("infra-embed: infra/bootstrap.py must not contain '${' (Fn::Sub would substitute it)")
    lines = TEMPLATE.read_text().splitlines()
    first, end, indent = embedded(lines)
    wanted = [(" " * indent + line) if line else "" for line in script.splitlines()]
    if "--check" in sys.argv:
        if lines[first:end] != wanted:
            sys.exit("infra-embed: infra/stockstream.yaml does not embed infra/bootstrap.py as it is;"
                     " run scripts/infra-embed.py")
        print("infra-embed: the template embeds infra/bootstrap.py")
        return
    lines[first:end] = wanted
    TEMPLATE.write_text("\n".join(lines) + "\n")
    print(f"infra-embed: embedded {len(wanted)} lines into {TEMPLATE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

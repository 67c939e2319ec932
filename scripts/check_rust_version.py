#!/usr/bin/env python3
"""Checks that Cargo.toml's rust-version is true: no locked dependency needs a newer Rust than the workspace
says, and rust-toolchain.toml's channel is at least that version. Prints what it compared."""
import json
import pathlib
import subprocess
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def version(text):
    return tuple(int(part) for part in text.split("."))


def main():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    members = set(meta["workspace_members"])
    ours = {p["rust_version"] for p in meta["packages"] if p["id"] in members}
    if len(ours) != 1 or None in ours:
        print(f"rust-version: every workspace crate takes the workspace's; found {sorted(map(str, ours))}")
        return 1
    declared = ours.pop()
    deps = [(version(p["rust_version"]), p["name"], p["version"])
            for p in meta["packages"] if p["id"] not in members and p.get("rust_version")]
    needed, name, at = max(deps)
    channel = tomllib.loads((ROOT / "rust-toolchain.toml").read_text())["toolchain"]["channel"]
    failed = 0
    if needed > version(declared):
        print(f"rust-version {declared} is too low: {name} {at} needs {'.'.join(map(str, needed))}")
        failed += 1
    if version(channel) < version(declared):
        print(f"rust-toolchain.toml's channel {channel} is older than rust-version {declared}")
        failed += 1
    print(f"rust-version {declared}: the newest any dependency needs is {'.'.join(map(str, needed))} ({name} {at}); "
          f"toolchain {channel}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

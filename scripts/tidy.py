#!/usr/bin/env python3
"""clang-tidy (.clang-tidy at the root) over every translation unit of a configured build.

Each unit's result is cached outside the clone (EMBER_TIDY_CACHE, default ~/.cache/ember-tidy),
keyed by the sha256 of its preprocessed text (comments, so NOLINTs, kept; the clone path
replaced, so that clones share entries), its compiler arguments, .clang-tidy and
`clang-tidy --version`: an unchanged unit is not analysed again, and any change that could alter
a finding (a header it includes, a flag, a check, another clang-tidy) misses the cache. Standard library only (CI runs no Python packages).

  scripts/tidy.py BUILD_DIR [-j N]    exit status 1 if any unit has a finding
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CACHE = pathlib.Path(os.environ.get("EMBER_TIDY_CACHE", pathlib.Path.home() / ".cache" / "ember-tidy"))


# Splits clang-tidy's output before each "file:line:col: warning|error:" line (notes stay with it).
DIAGNOSTIC = re.compile(r"^(?=\S+:\d+:\d+: (?:warning|error):)", re.M)


def arguments(entry):
    return entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])


def preprocess_args(args):
    """The compile command turned into 'preprocess to stdout'."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        if a.startswith(("-MD", "-MMD", "-MF", "-MT", "-MQ")):
            if a in ("-MF", "-MT", "-MQ"):
                skip = True
            continue
        out.append("-E" if a == "-c" else a)
    # -C keeps comments: a NOLINT added or removed changes the key, as it changes the findings.
    return out + ["-C", "-o", "-"]


def unit_key(entry, salt):
    args = arguments(entry)
    pre = subprocess.run(preprocess_args(args), cwd=entry["directory"], capture_output=True)
    if pre.returncode != 0:
        raise RuntimeError(f"preprocessing {entry['file']} failed:\n{pre.stderr.decode()}")
    h = hashlib.sha256(salt)
    h.update(pre.stdout.replace(str(ROOT).encode(), b"<root>"))
    h.update("\0".join(args).replace(str(ROOT), "<root>").encode())
    return h.hexdigest()


def analyse(entry, build, salt):
    key = unit_key(entry, salt)
    path = CACHE / key[:2] / key
    if path.exists():
        os.utime(path)  # recently used: kept by the pruning below
        return json.loads(path.read_text()), True
    run = subprocess.run(["clang-tidy", "--quiet", "-p", str(build), entry["file"]],
                         capture_output=True, text=True)
    if run.returncode < 0:  # killed: no result to keep
        raise RuntimeError(f"clang-tidy on {entry['file']} ended by signal {-run.returncode}")
    # Findings only: clang-tidy's "N warnings generated" chatter goes to stderr.
    result = {"rc": run.returncode, "out": run.stdout.replace(str(ROOT), "<root>")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return result, False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build", type=pathlib.Path)
    parser.add_argument("-j", type=int, default=os.cpu_count())
    opts = parser.parse_args()
    build = opts.build.resolve()
    version = subprocess.run(["clang-tidy", "--version"], capture_output=True, check=True).stdout
    salt = version + b"\0" + (ROOT / ".clang-tidy").read_bytes() + b"\0"
    entries = [e for e in json.loads((build / "compile_commands.json").read_text())
               if pathlib.Path(e["file"]).resolve().is_relative_to(ROOT)
               and not pathlib.Path(e["file"]).resolve().is_relative_to(build)]
    start, hits, failed, findings = time.monotonic(), 0, [], {}
    with concurrent.futures.ThreadPoolExecutor(max(1, opts.j)) as pool:
        futures = {pool.submit(analyse, e, build, salt): e["file"] for e in entries}
        for future in concurrent.futures.as_completed(futures):
            result, hit = future.result()
            hits += hit
            if result["rc"] != 0 or result["out"].strip():
                failed.append(futures[future])
                # A finding in a header comes once per unit that includes it: print it once.
                for block in DIAGNOSTIC.split(result["out"]):
                    if block.strip():
                        findings.setdefault(block, None)
    for block in findings:
        sys.stdout.write(block.replace("<root>", str(ROOT)))
    # Entries unused for 30 days belong to code that no longer exists.
    cutoff = time.time() - 30 * 86400
    for p in CACHE.glob("*/*"):
        if p.stat().st_mtime < cutoff:
            p.unlink(missing_ok=True)
    print(f"clang-tidy: {len(entries)} units, {hits} cached, {len(failed)} with findings "
          f"({len(findings)} distinct), "
          f"{time.monotonic() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""clang-tidy (.clang-tidy at the root) on the files changed since a commit known to be clean.

The brief's "clang-tidy on changed files", without a whole-tree pass (an hour on 2 cores with a
cold cache) on every CI machine. scripts/tidy-clean-commit names a commit whose whole tree had no
finding. Analysed: every unit whose source changed since it, and for each changed header that no
such unit includes, the first unit that does: a header's own findings are the same in every unit
that includes it. A finding that a header change causes in an unchanged includer waits for the
next `--all` run (before the clean commit moves forward).
Everything is analysed when .clang-tidy changed, with `--all`, or in a clone without that commit.

Each unit's result is cached outside the clone (EMBER_TIDY_CACHE, default ~/.cache/ember-tidy),
keyed by the sha256 of its preprocessed text (comments, so NOLINTs, kept; the clone path
replaced, so that clones share entries), its compiler arguments, .clang-tidy and
`clang-tidy --version`: an unchanged unit is not analysed again, and any change that could alter
a finding (a header it includes, a flag, a check, another clang-tidy) misses the cache. Standard library only (CI runs no Python packages).

  scripts/tidy.py BUILD_DIR [-j N] [--all]    exit status 1 if any unit has a finding
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


CLEAN_COMMIT_FILE = ROOT / "scripts" / "tidy-clean-commit"
# The preprocessor's line markers: '# 12 "path/to/header.hpp" 2' names each file a unit includes.
LINE_MARKER = re.compile(rb'^# \d+ "([^"]+)"', re.M)


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


def changed_files():
    """Absolute paths of the files that differ from the clean commit (committed, staged,
    unstaged or untracked), or None when every unit must be analysed."""
    clean = CLEAN_COMMIT_FILE.read_text().split()[0]
    git = ["git", "-C", str(ROOT)]
    if subprocess.run(git + ["cat-file", "-e", f"{clean}^{{commit}}"],
                      capture_output=True).returncode != 0:
        print(f"clang-tidy: {clean} is not in this clone; analysing every unit")
        return None
    names = subprocess.run(git + ["diff", "--name-only", clean], capture_output=True, text=True,
                           check=True).stdout.split()
    names += subprocess.run(git + ["ls-files", "--others", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.split()
    if ".clang-tidy" in names:
        return None
    return {str((ROOT / n).resolve()) for n in names}


def unit_key(entry, salt):
    """The cache key and the set of files the unit is made of."""
    args = arguments(entry)
    pre = subprocess.run(preprocess_args(args), cwd=entry["directory"], capture_output=True)
    if pre.returncode != 0:
        raise RuntimeError(f"preprocessing {entry['file']} failed:\n{pre.stderr.decode()}")
    h = hashlib.sha256(salt)
    h.update(pre.stdout.replace(str(ROOT).encode(), b"<root>"))
    h.update("\0".join(args).replace(str(ROOT), "<root>").encode())
    directory = pathlib.Path(entry["directory"])
    files = {str((directory / os.fsdecode(f)).resolve())
             for f in set(LINE_MARKER.findall(pre.stdout)) if not f.startswith(b"<")}
    return h.hexdigest(), files


def analyse(entry, build, key):
    """(result, cached) for one unit."""
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


def select(entries, units, changed):
    """Indices of the units to analyse (see the module's docstring)."""
    if changed is None:
        return list(range(len(entries)))
    chosen = [i for i, e in enumerate(entries) if str(pathlib.Path(e["file"]).resolve()) in changed]
    covered = set().union(*(units[i][1] for i in chosen))
    for header in sorted(changed - covered):
        first = next((i for i, (_, files) in enumerate(units) if header in files), None)
        if first is not None:
            chosen.append(first)
            covered |= units[first][1]
    return sorted(set(chosen))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build", type=pathlib.Path)
    parser.add_argument("-j", type=int, default=os.cpu_count())
    parser.add_argument("--all", action="store_true", help="analyse every unit")
    opts = parser.parse_args()
    changed = None if opts.all else changed_files()
    build = opts.build.resolve()
    version = subprocess.run(["clang-tidy", "--version"], capture_output=True, check=True).stdout
    salt = version + b"\0" + (ROOT / ".clang-tidy").read_bytes() + b"\0"
    entries = [e for e in json.loads((build / "compile_commands.json").read_text())
               if pathlib.Path(e["file"]).resolve().is_relative_to(ROOT)
               and not pathlib.Path(e["file"]).resolve().is_relative_to(build)]
    start, hits, failed, findings = time.monotonic(), 0, [], {}
    with concurrent.futures.ThreadPoolExecutor(max(1, opts.j)) as pool:
        units = list(pool.map(lambda e: unit_key(e, salt), entries))
        chosen = select(entries, units, changed)
        futures = {pool.submit(analyse, entries[i], build, units[i][0]): entries[i]["file"]
                   for i in chosen}
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
    print(f"clang-tidy: {len(chosen)} of {len(entries)} units "
          f"({'all' if changed is None else 'changed since the clean commit'}), {hits} cached, "
          f"{len(failed)} with findings ({len(findings)} distinct), "
          f"{time.monotonic() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

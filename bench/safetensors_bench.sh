#!/usr/bin/env bash
# safetensors reading: Ember vs the Python safetensors library (numpy) vs `cat FILE > /dev/null`.
#   bench/safetensors_bench.sh [DIR]      (files go to DIR, default /tmp; ~1 GiB of disk)
# Env: EMBER_BUILD_DIR (default build), REPEATS (default 5), EMBER_NUM_THREADS (Ember's pool).
# Creates a 1 GiB and a 1 MiB F32 file with Ember's writer, warms the page cache, then times
#   (a) open + read one small tensor (1 MiB file and 1 GiB file: opening is O(header)),
#   (a') the same over files of 100, 179, 1,000 and 10,000 tensors (header parsing per tensor),
#   (b) open + checksum every byte of every tensor (1 GiB file),
# each as the best of REPEATS runs (40 x REPEATS for (a)) measured inside the process (no
# interpreter/process startup).
# All timings are with a WARM page cache: this measures the reader, not the disk.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp}
build=${EMBER_BUILD_DIR:-build}
repeats=${REPEATS:-5}
ember=$build/bin/bench_safetensors
py=tools/.venv/bin/python
[[ -x $ember ]] || { echo "error: $ember not found; build target bench_safetensors" >&2; exit 1; }
[[ -x $py ]] || { echo "error: $py not found; run tools/setup_venv.sh" >&2; exit 1; }

big=$dir/ember_bench_1g.safetensors
small=$dir/ember_bench_1m.safetensors
[[ -f $big ]] || "$ember" create "$big" $((1 << 30))
[[ -f $small ]] || "$ember" create "$small" $((1 << 20))

python_side() {  # MODE PATH -> "seconds=<t> checksum=<c>"
  "$py" - "$1" "$2" "${REPEATS:-$repeats}" <<'PY'
import sys, time
import numpy as np
from safetensors import safe_open
mode, path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
best, checksum = float("inf"), None
for _ in range(repeats):
    t0 = time.perf_counter()
    if mode == "open-one":
        with safe_open(path, framework="np") as f:
            checksum = "%.3f" % f.get_tensor("small").astype(np.float64).sum()
    else:  # touch-all: the same 32-bit word checksum as Ember, mod 2^64
        total = 0
        with safe_open(path, framework="np") as f:
            for name in f.keys():
                a = f.get_tensor(name)
                total += int(np.sum(a.view(np.uint32), dtype=np.uint64))
        checksum = total % (1 << 64)
    best = min(best, time.perf_counter() - t0)
print(f"seconds={best:.9f} checksum={checksum}")
PY
}

cat_side() {  # PATH -> seconds, best of REPEATS
  "$py" - "$1" "$repeats" <<'PY'
import subprocess, sys, time
path, repeats = sys.argv[1], int(sys.argv[2])
best = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter()
    with open("/dev/null", "wb") as null:
        subprocess.run(["cat", path], stdout=null, check=True)
    best = min(best, time.perf_counter() - t0)
print(f"{best:.9f}")
PY
}

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%10.3f ms", s * 1000 }'; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; Ember threads: ${EMBER_NUM_THREADS:-$(nproc)}"
echo "files: $big ($(stat -c %s "$big") bytes), $small ($(stat -c %s "$small") bytes)"
echo "page cache: WARM (each file is read once before timing); best of $repeats"
cat "$big" "$small" > /dev/null

echo
echo "(a) open + read tensor 'small' [16] F32"
for f in "$small" "$big"; do
  e=$("$ember" open-one "$f" $((repeats * 40))); p=$(REPEATS=$((repeats * 40)) python_side open-one "$f")
  [[ $(field checksum "$e") == "$(field checksum "$p")" ]] || { echo "checksum mismatch: $e / $p" >&2; exit 1; }
  printf '  %-4s file: ember %s   python %s   python/ember %sx\n' \
    "$([[ $f == "$big" ]] && echo 1GiB || echo 1MiB)" "$(ms "$(field seconds "$e")")" \
    "$(ms "$(field seconds "$p")")" "$(ratio "$(field seconds "$p")" "$(field seconds "$e")")"
  [[ $f == "$big" ]] && open_big=$(field seconds "$e") || open_small=$(field seconds "$e")
done
echo "  ember open, 1 GiB vs 1 MiB file: $(ratio "$open_big" "$open_small")x (O(header): ~1 expected)"

echo
echo "(a') open + read tensor 'small', by tensor count (4 KiB tensors)"
for count in 100 179 1000 10000; do
  f=$dir/ember_bench_t$count.safetensors
  [[ -f $f ]] || "$ember" create "$f" $((count * 4096)) "$count"
  cat "$f" > /dev/null
  e=$("$ember" open-one "$f" $((repeats * 20))); p=$(REPEATS=$((repeats * 20)) python_side open-one "$f")
  [[ $(field checksum "$e") == "$(field checksum "$p")" ]] || { echo "checksum mismatch: $e / $p" >&2; exit 1; }
  printf '  %6d tensors (%6d-byte header): ember %s   python %s   python/ember %sx\n' "$count" \
    "$(od -An -t u8 -N 8 "$f" | tr -d ' ')" "$(ms "$(field seconds "$e")")" \
    "$(ms "$(field seconds "$p")")" "$(ratio "$(field seconds "$p")" "$(field seconds "$e")")"
done

echo
echo "(b) open + checksum every byte (1 GiB file)"
c=$(cat_side "$big")
e=$("$ember" touch-all "$big" "$repeats")
p=$(python_side touch-all "$big")
[[ $(field checksum "$e") == "$(field checksum "$p")" ]] || { echo "checksum mismatch: $e / $p" >&2; exit 1; }
es=$(field seconds "$e"); ps=$(field seconds "$p")
gib() { awk -v s="$1" 'BEGIN { printf "%6.2f GiB/s", 1.0 / s }'; }
printf '  cat > /dev/null  %s  %s  (copy limit)\n' "$(ms "$c")" "$(gib "$c")"
printf '  ember            %s  %s  ember/cat %sx\n' "$(ms "$es")" "$(gib "$es")" "$(ratio "$es" "$c")"
printf '  python           %s  %s  python/cat %sx  python/ember %sx\n' "$(ms "$ps")" "$(gib "$ps")" \
  "$(ratio "$ps" "$c")" "$(ratio "$ps" "$es")"

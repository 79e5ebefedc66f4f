#!/usr/bin/env bash
# Fails on any include that goes against the module layering: a module's headers and sources may
# include only its own headers and those of the modules it links (transitively). The allowed
# graph is not written here: CMake derives it from the targets' link graph at configure time
# (cmake/EmberPackage.cmake writes BUILD_DIR/ember_layering.txt).
#   scripts/check_layering.sh [BUILD_DIR]   (default build/, configured)
set -euo pipefail
cd "$(dirname "$0")/.."
table=${1:-build}/ember_layering.txt
[[ -f $table ]] || { echo "error: $table missing (configure the build first)" >&2; exit 1; }

bad=0
checked=0
while IFS=: read -r module allowed; do
  [[ $module == \#* || -z $module ]] && continue
  for dir in "include/ember/$module" "src/$module"; do
    [[ -d $dir ]] || continue
    while IFS= read -r hit; do
      file=${hit%%:*}
      rest=${hit#*:}
      line=${rest%%:*}
      target=$(sed -E 's@.*[<"]ember/([a-z_]+)/.*@\1@' <<<"${rest#*:}")
      checked=$((checked + 1))
      if [[ " $allowed " != *" $target "* ]]; then
        echo "$file:$line: $module includes ember/$target/, which it does not link (allowed:$allowed)"
        bad=1
      fi
    done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]ember/[a-z_]+/' "$dir" || true)
    # A module's private headers live beside its sources; reaching into another module's src/
    # (or from include/ into src/) bypasses the table.
    if grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*\.\./' "$dir"; then
      echo "^ $dir: relative includes out of the module's own folder"
      bad=1
    fi
  done
done <"$table"
((checked > 0)) || { echo "error: no includes checked; is $table empty?" >&2; exit 1; }
if ((bad)); then
  echo "error: wrong-way includes (docs/ARCHITECTURE.md, module table)" >&2
  exit 1
fi
echo "layering: $checked module includes follow the link graph"

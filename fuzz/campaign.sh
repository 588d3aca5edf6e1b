#!/usr/bin/env bash
# Runs the translation fuzz targets one after another, each from its
# checked-in seeds (copied into corpus/<target>/, never written back), and
# prints one RFC section 7 table row per target.
#
#   fuzz/campaign.sh [-t SECONDS | -n EXECUTIONS] [TARGET...]
#
# -t: each target runs SECONDS (default 3600); -n: each runs until EXECUTIONS
# inputs were run (libFuzzer -runs; no time limit). Targets default to the
# five address-translation ones. Set SANITIZER=address for an ASan build
# (default none: the workspace has no unsafe code, and ASan costs ~2x);
# NICE (default 10) is the nice level; FUZZ_FLAGS adds cargo-fuzz build
# flags (e.g. --no-trace-compares: faster, coarser feedback; a different
# flag set rebuilds everything). Logs go to fuzz/campaign-logs/.
set -euo pipefail
cd "$(dirname "$0")"

limit=(-max_total_time=3600)
what="3600 s"
while getopts "t:n:" o; do
  case $o in
    t) limit=(-max_total_time="$OPTARG"); what="$OPTARG s" ;;
    n) limit=(-runs="$OPTARG"); what="$OPTARG executions" ;;
    *) echo "usage: $0 [-t SECONDS | -n EXECUTIONS] [TARGET...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(dma_ops pgtable_ops iova_ops arch_translate sg_append)
san="${SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

mkdir -p campaign-logs
for t in "${targets[@]}"; do nice -n "${NICE:-10}" cargo fuzz build -s "$san" ${FUZZ_FLAGS:-} "$t"; done

rows=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  cp -n "seeds/$t/"* "corpus/$t/" 2>/dev/null || true
  log="campaign-logs/$t.log"
  start=$(date +%s)
  status=ok
  nice -n "${NICE:-10}" cargo fuzz run -s "$san" ${FUZZ_FLAGS:-} "$t" "corpus/$t" -- "${limit[@]}" -print_final_stats=1 \
    >"$log" 2>&1 || status="FAILED (see $log)"
  secs=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  corp=$(grep -o 'corp: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  rate=$(( ${execs:-0} / (secs > 0 ? secs : 1) ))
  if [ "${execs:-0}" -ge 1000000 ]; then to1m="reached"
  elif [ "${rate}" -gt 0 ]; then to1m="~$(( 1000000 / rate / 60 )) min"
  else to1m="-"; fi
  rows+=("| \`$t\` | ${execs:-?} | ${secs} s | ${rate}/s | ${corp:-?} | ${cov:-?} | ${to1m} | ${status} |")
done

echo "sanitizer: $san; flags: ${FUZZ_FLAGS:-none}; each target: $what; $(nproc) cores; $(date -u +%Y-%m-%d)"
echo "| target | executions | time | rate | corpus | coverage (\`cov\`) | time to 1 M | result |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"

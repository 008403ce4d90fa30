#!/usr/bin/env bash
# Runs two tracelens binaries over every testdata file (the project's and
# ../shared/testdata's) and over generated canary workloads, and fails on
# the first command whose standard output, standard error or exit code
# differ. Used to check that a refactor changes no answer:
#
#   scripts/compare-outputs.sh OLD_BINARY NEW_BINARY
#
# Output files (export) are compared byte for byte too, except Parquet,
# whose footer names the writing library's build.
set -uo pipefail

old=${1:?usage: compare-outputs.sh OLD_BINARY NEW_BINARY}
new=${2:?usage: compare-outputs.sh OLD_BINARY NEW_BINARY}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$root/../shared/testdata" 2>/dev/null && pwd) || shared=""
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failures=0
commands=0

# run NAME ARGS...: runs both binaries with ARGS (the token @OUT names a
# per-binary output file) and compares what they print and write.
run() {
    local name=$1
    shift
    local side bin args
    for side in old new; do
        bin=$old
        [[ $side == new ]] && bin=$new
        args=()
        for a in "$@"; do args+=("${a//@OUT/$work/$side.out}"); done
        rm -f "$work/$side.out"
        (cd "$root" && "$bin" "${args[@]}") >"$work/$side.stdout" 2>"$work/$side.stderr"
        echo $? >"$work/$side.code"
        # The binary's own name appears in clap's messages.
        # The binary's own name appears in clap's messages, the output
        # file's in the report of what was written.
        sed -i -e "s#$(basename "$bin")#tracelens#g" -e "s#$work/$side.out#OUT#g" "$work/$side.stderr" "$work/$side.stdout"
    done
    commands=$((commands + 1))
    local part
    for part in stdout stderr code out; do
        if [[ -e $work/old.$part || -e $work/new.$part ]] && ! cmp -s "$work/old.$part" "$work/new.$part"; then
            echo "DIFFERS ($part): $name: $*"
            diff <(head -c 4000 "$work/old.$part") <(head -c 4000 "$work/new.$part") | head -20
            failures=$((failures + 1))
            return
        fi
    done
}

inputs=("$root"/testdata/*.json "$root"/testdata/*.jsonl "$root"/testdata/*.pb "$root"/testdata/*.bin \
    "$root"/testdata/*.gz "$root"/testdata/*.zst)
if [[ -n $shared ]]; then
    while IFS= read -r f; do inputs+=("$f"); done < <(find "$shared" -type f ! -name '*.md' | sort)
fi

for f in "${inputs[@]}"; do
    run analyze analyze "$f"
    run analyze-json analyze --format json "$f"
    run analyze-skew analyze --adjust-clock-skew --format json "$f"
    for g in table json dot mermaid; do run graph graph --format "$g" "$f"; done
    run critical-path critical-path --all "$f"
    run critical-path-json critical-path --all --format json "$f"
    run critical-path-strict critical-path --strict-sibling-order --format json "$f"
    run bottlenecks bottlenecks "$f"
    run bottlenecks-json bottlenecks --format json "$f"
    for t in spans edges critical-path; do
        run export export --table "$t" --format ndjson -o @OUT "$f"
        run export-csv export --table "$t" --format csv -o @OUT "$f"
    done
    run sql sql "$f" "SELECT service, name, count(*) AS n FROM spans GROUP BY service, name ORDER BY n DESC, service, name"
    run diff diff "$f" "$f"
done

# Generated workloads: a latency canary, an error canary and two arms for diff.
gen=("$old" generate --traces 3000 --scenario canary --target checkout)
{
    cd "$work" &&
        "${gen[@]}" --change latency --magnitude 2.8 -o latency.jsonl &&
        "${gen[@]}" --change errors --magnitude 0.05 -o errors.jsonl &&
        "$old" generate --traces 2000 --seed 7 -o a.jsonl &&
        "$old" generate --traces 2000 --seed 8 -o b.jsonl
} 2>/dev/null || { echo "generating the workloads failed"; exit 2; }
run generate generate --traces 200 --seed 3
run generate-jaeger generate --traces 50 --format jaeger-json
for f in "$work/latency.jsonl" "$work/errors.jsonl"; do
    for fmt in table json; do
        run verdict verdict "$f" --service checkout --baseline-version 1.9.0 --candidate-version 1.10.0 --format "$fmt"
    done
    run verdict-weight verdict "$f" --service checkout --baseline-version 1.9.0 --candidate-version 1.10.0 \
        --canary-weight 0.1 --format json
    run verdict-missing verdict "$f" --service nosuch --baseline-version 1.9.0 --candidate-version 1.10.0
    run critical-path critical-path --format json "$f"
    run bottlenecks bottlenecks --format json "$f"
    run graph graph --format json "$f"
done
run diff-arms diff "$work/a.jsonl" "$work/b.jsonl"
run diff-arms-json diff --format json "$work/a.jsonl" "$work/b.jsonl"
run diff-canary diff --format json "$work/a.jsonl" "$work/latency.jsonl"

echo "$commands commands compared, $failures differ"
[[ $failures -eq 0 ]]

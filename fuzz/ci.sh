#!/usr/bin/env bash
# Fuzz smoke run: builds every fuzz target (one cargo build for all of them) and runs each for a
# bounded time on the committed corpus. A crash, a failed invariant, a hang (an input running
# longer than -timeout) or memory over -rss_limit_mb fails the run; what libFuzzer found is left
# in fuzz/artifacts/<target>/. The corpus in git is only read: new inputs go to a scratch copy.
#
#   bash fuzz/ci.sh                      # every target, 30 s each
#   FUZZ_SECONDS=5 bash fuzz/ci.sh audience protocol
#
# Building the targets means building herald-server and its ~400 dependencies once more with
# coverage instrumentation, which dominates the run. So the smoke build is the lightest one: the
# dev profile of fuzz/Cargo.toml (no optimisation, no debug info), no AddressSanitizer
# (FUZZ_SANITIZER=none; Rust code without `unsafe` gains little from it), and a target directory
# outside the clone (FUZZ_TARGET_DIR) that later runs on the same machine reuse. The long runs
# (docs/reliability.md, "Fuzzing") build optimised, for speed, without a sanitizer either.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-30}
sanitizer=${FUZZ_SANITIZER:-none}
target_dir=${FUZZ_TARGET_DIR:-$HOME/.cache/herald-fuzz-target}
# cargo fuzz passes nightly-only flags (-Z, sanitizer coverage); the pinned stable toolchain
# accepts them with this.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# One build for every target; `cargo fuzz run` below finds it up to date when given the same
# flags.
build_flags=(--dev --sanitizer "$sanitizer" --target-dir "$target_dir")
start=$(date +%s)
cargo fuzz build "${build_flags[@]}"
echo "fuzz: built the targets in $(($(date +%s) - start)) s"

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target" "fuzz/artifacts/$target"
    # Limits: an input over 10 s is a hang, a process over 1 GiB of RSS or one allocation over
    # 256 MiB (enforced where the sanitizer's allocator is linked in) a runaway allocation.
    if cargo fuzz run "${build_flags[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=256 \
        -artifact_prefix="fuzz/artifacts/$target/" -print_final_stats=1 \
        >"$scratch/$target.log" 2>&1; then
        echo "fuzz: $target: $(grep -E '^stat::number_of_executed_units' "$scratch/$target.log" | awk '{print $2}') executions in ${seconds} s, no finding"
    else
        tail -n 40 "$scratch/$target.log"
        echo "fuzz: $target: FAILED (input in fuzz/artifacts/$target/)"
        failed+=("$target")
    fi
done

echo "fuzz: ${#targets[@]} targets, $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]

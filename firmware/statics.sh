#!/usr/bin/env bash
# Where the self-test's `static` structures land: `.bss` (zero-initialised:
# RAM only) or `.data` (a non-zero initial value: RAM, and the same bytes
# again in flash). Fails if any of them is not in `.bss` (issue 14: the
# rings, and the wheels and queues since their empty markers are zero
# bits), or if the 16-timer `SmallWheel` takes more than 1 KiB.
#
#   ./statics.sh TARGET
set -euo pipefail
cd "$(dirname "$0")"
target="$1"
held_to_bss="SAMPLE_RING EVENT_RING SPSC_QUEUE WHEEL SMALL_WHEEL PRIORITIES DELAYS"
# A 16-timer `static` wheel for a small part fits in 1 KiB (issue 14).
held_to_1k="SMALL_WHEEL"
tools="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
cargo build -q --release --target "$target" --bin selftest
image="target/$target/release/selftest"
symbols=$("$tools/llvm-nm" -S --demangle "$image")
bad=0
for name in $held_to_bss; do
    line=$(echo "$symbols" | grep -E "[ :]${name}(::h[0-9a-f]+)?$" | head -n 1)
    [ -n "$line" ] || { echo "$name: not found in $image"; bad=1; continue; }
    read -r _ size kind _ <<<"$line"
    case "$kind" in
        b | B) where=.bss ;;
        d | D) where=.data ;;
        *) where="section '$kind'" ;;
    esac
    echo "$name ($target): $((16#$size)) B in $where"
    if [ "$where" != .bss ] && [[ " $held_to_bss " == *" $name "* ]]; then
        bad=1
    fi
    if [ "$((16#$size))" -gt 1024 ] && [[ " $held_to_1k " == *" $name "* ]]; then
        echo "$name ($target): more than 1 KiB"
        bad=1
    fi
done
exit "$bad"

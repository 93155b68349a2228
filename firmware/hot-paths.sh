#!/usr/bin/env bash
# The panic-never and no-hidden-copy check for one `never_*` firmware.
#
#   ./hot-paths.sh TARGET BIN            # check, exit 1 if it fails
#   ./hot-paths.sh TARGET BIN --report   # say what fails, exit 0
#   ./hot-paths.sh TARGET BIN --report-panics
#                                        # exit 1 on a hidden copy only;
#                                        # panicking branches are listed
#
# 1. Links BIN with `--features panic-never` (its panic handler calls an
#    undefined symbol): the link succeeds only if no panicking branch is
#    left on the hot path the firmware exercises.
# 2. Links it with the ordinary handler and looks for memcpy/memmove in the
#    image (a hidden copy of a whole array on a hot path).
# On failure it lists each call into a panic with the source line it was
# inlined from, so the branch can be found.
set -uo pipefail
cd "$(dirname "$0")"
target="$1" bin="$2" mode="${3:-}"
tools="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
image="target/$target/release/$bin"
ok=1 copies_ok=1

if cargo build -q --release --target "$target" --features panic-never --bin "$bin" 2>/dev/null; then
    echo "$bin ($target): no panicking branch"
else
    ok=0
    echo "$bin ($target): PANICKING BRANCHES LEFT; calls into a panic, by source line:"
fi
cargo build -q --release --target "$target" --bin "$bin" || exit 1
if [ "$ok" = 0 ]; then
    "$tools/llvm-objdump" -d -l --no-show-raw-insn --demangle "$image" |
        awk '/^; \//{loc=$2} /\tbl\t.*<core::(panicking|slice::index|option|result)::/{
            match($0, /<[^>]*>/); print "    " loc " -> " substr($0, RSTART + 1, RLENGTH - 2)}' |
        grep -v '/library/core/src/panic' |
        sed -E 's|/rustc/[0-9a-f]+/library/|(rust) |; s|^    /.*/(src/[a-z_]+/)|    \1|; s|::h[0-9a-f]{16}$||' | sort | uniq -c
fi
copies=$("$tools/llvm-nm" --demangle "$image" | grep -E ' (__aeabi_mem(cpy|move)[48]?|memcpy|memmove|compiler_builtins::mem::mem(cpy|move))$' | awk '{print $NF}' | sort -u | tr '\n' ' ')
if [ -n "$copies" ]; then
    copies_ok=0
    echo "$bin ($target): HIDDEN COPIES: $copies"
else
    echo "$bin ($target): no memcpy/memmove"
fi
case "$mode" in
    --report) exit 0 ;;
    --report-panics) [ "$copies_ok" = 1 ] ;;
    *) [ "$ok" = 1 ] && [ "$copies_ok" = 1 ] ;;
esac

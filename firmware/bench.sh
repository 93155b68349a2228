#!/usr/bin/env bash
# The README's embedded figures: instructions per operation on QEMU's
# Cortex-M3 board under -icount, and each structure's flash and RAM above
# the bare firmware (release profile: opt-level "s", LTO). Prints markdown.
#
#   ./bench.sh            # thumbv7m-none-eabi on the LM3S6965EVB
set -euo pipefail
cd "$(dirname "$0")"
target=thumbv7m-none-eabi
tools="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
image="target/$target/release/bench"

# flash = .vector_table + .text + .rodata + .data (its initial values);
# RAM = .data + .bss (stack and the cortex-m-rt runtime's own excluded by
# subtracting the bare firmware, built without any measure-* feature).
sizes() {
    "$tools/llvm-size" -A "$image" | awk '
        $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { flash += $2 }
        $1 == ".data" { flash += $2; ram += $2 }
        $1 == ".bss" || $1 == ".uninit" { ram += $2 }
        END { print flash, ram }'
}

build() {
    cargo build -q --release --target "$target" --bin bench "$@"
}

build
read -r bare_flash bare_ram < <(sizes)
declare -A flash ram
for m in spsc ring mpring heapless bbqueue wheel delay embassy; do
    build --features "measure-$m"
    read -r f r < <(sizes)
    flash[$m]=$((f - bare_flash))
    ram[$m]=$((r - bare_ram))
done

build --features compare
out=$(timeout 300 qemu-system-arm -machine lm3s6965evb -nographic \
    -semihosting-config enable=on,target=native \
    -icount shift=0,align=off,sleep=off -kernel "$image" 2>/dev/null)
echo "$out" | grep -q '^PASS bench' || { echo "$out"; exit 1; }
insns() { echo "$out" | sed -n "s/^insns\/op $1: //p"; }

echo "| structure (16 or 64 slots of u32) | operation | instructions / op | flash (B) | RAM (B) |"
echo "|---|---|---|---|---|"
row() { echo "| $1 | $2 | $(insns "$3") | ${flash[$4]} | ${ram[$4]} |"; }
row "latchfree \`Spsc<u32, 64>\`" "\`try_push\` + \`try_pop\`" "latchfree Spsc try_push+try_pop" spsc
row "latchfree SP ring, \`Inline<u32, 64, 1>\`" "\`try_publish\` + \`poll\`" "latchfree SP ring try_publish+poll" ring
row "heapless \`spsc::Queue<u32, 64>\`" "\`enqueue\` + \`dequeue\`" "heapless spsc enqueue+dequeue" heapless
row "bbqueue \`BBBuffer<256>\` (4-byte grants)" "\`grant_exact\` + \`commit\` + \`read\` + \`release\`" "bbqueue grant+commit+read+release" bbqueue
row "latchfree MP ring, \`Inline<u32, 64, 1>\`" "\`try_publish\` + \`poll\`" "latchfree MP ring try_publish+poll" mpring
row "latchfree \`Wheel<u32, Fixed<16>>\` (6 levels, the default)" "\`try_insert_at\` + \`advance_to\` + \`pop_expired\`" "latchfree wheel try_insert_at+advance+pop" wheel
row "latchfree \`DelayQueue<u32, Fixed<16>>\`" "\`try_insert_at\` + \`poll_expired\`" "latchfree delay queue try_insert_at+poll_expired" delay
row "embassy-time generic queue \`ConstGenericQueue<16>\` (wakers only)" "\`schedule_wake\` + \`next_expiration\`" "embassy generic queue schedule_wake+next_expiration" embassy
echo
echo "bare firmware: ${bare_flash} B flash, ${bare_ram} B RAM; $(echo "$out" | sed -n 's/^calibration: //p')"

#!/usr/bin/env bash
# make demo: boots the patched kernel in QEMU and shows dirsync_stat(2)
# answering for a few files (qemu/guest-demo.sh); when the CLI is staged in
# build/guest/bin/dirsync (qemu/stage-userspace.sh), the guest then runs
# qemu/demo-guest.sh.  QEMU_ACCEL=kvm opts in to KVM.
set -euo pipefail
. "$(dirname "$0")/vm-lib.sh"
cd "$ROOT"

vm_prepare
rc=0
vm_boot demo "${DIRSYNC_VM_TIMEOUT:-600}" || rc=$?
tr -d '\r' <"$VM/results.log" 2>/dev/null | grep -qx "=== GUEST DONE" ||
	die "the demo VM did not finish (status $rc)"
if grep -aE "\[ *[0-9]+\.[0-9]+\] .*(Kernel panic|Oops|BUG:|WARNING:|Call Trace)" "$VM/console.log"; then
	die "kernel problems during the demo (see above)"
fi
echo "demo: done ($KERNEL_VERSION)"

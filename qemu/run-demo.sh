#!/usr/bin/env bash
# make demo: boots the patched kernel in QEMU and shows dirsync_stat(2)
# answering for a few files (qemu/guest-demo-syscall.sh); when the CLI is
# staged in build/guest/bin/dirsync (qemu/stage-userspace.sh), the guest
# then runs qemu/guest-demo-cli.sh.  QEMU_ACCEL=kvm opts in to KVM.
set -euo pipefail
# shellcheck source=qemu/vm-lib.sh
. "$(dirname "$0")/vm-lib.sh"
cd "$ROOT"

vm_prepare
vm_kernel default
rc=0
vm_boot "$VM/demo" "${DIRSYNC_VM_TIMEOUT:-600}" dirsync.mode=demo || rc=$?
tr -d '\r' <"$VM/demo/results.log" 2>/dev/null | grep -qx "=== GUEST DONE" ||
	die "the demo VM did not finish (status $rc)"
if vm_console_problems "$VM/demo/console.log"; then
	die "kernel problems during the demo (see above)"
fi
echo "demo: done ($KERNEL_VERSION)"

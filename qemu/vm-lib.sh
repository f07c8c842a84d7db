# shellcheck shell=bash
# Sourced by qemu/run-tests.sh and qemu/run-demo.sh: builds the guest
# programs, packs the initramfs and boots the patched kernel under QEMU.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM="$ROOT/build/vm"
# die, take_lock, KERNEL_PROBLEM_RE (scripts/lib.sh) and pristine_tree
# shellcheck source=scripts/kernel-source.sh
. "$ROOT/scripts/kernel-source.sh"

# One VM run at a time per work tree: build/vm is shared.
vm_lock() {
	take_lock 8 "$ROOT/build/vm.lock" "vm: waiting for another VM run in this tree"
}

# vm_kernel [VARIANT]: builds (or takes from the cache) the kernel variant
# (default, kasan: see scripts/build-kernel.sh); sets BZIMAGE and
# KERNEL_VERSION.
vm_kernel() {
	local variant=${1:-default} out
	out=$("$ROOT/scripts/build-kernel.sh" --variant "$variant") ||
		die "kernel build ($variant) failed"
	BZIMAGE=$(tail -n1 <<<"$out")
	[ -f "$BZIMAGE" ] || die "no bzImage at '$BZIMAGE'"
	KERNEL_VERSION=$(cat "$ROOT/build/kernel/$variant/version")
}

# Runs qemu/stage-userspace.sh (written by the userspace side) if present:
# it fills build/guest/ with what must go into the VM.
vm_stage_userspace() {
	mkdir -p "$ROOT/build/guest"
	if [ -x "$ROOT/qemu/stage-userspace.sh" ]; then
		echo "vm: qemu/stage-userspace.sh" >&2
		"$ROOT/qemu/stage-userspace.sh" || die "qemu/stage-userspace.sh failed"
	fi
}

# Builds the static C programs into $VM/root: the kselftest of the series
# (kernel-module/tools/testing/selftests/dirsync, compiled next to the
# kselftest harness headers of the 6.12 tree, as in-tree) as
# /guest/tests/10-dirsync-selftest (dirsync_stat) and
# /guest/tests/11-dirsync-readdir-selftest, the microbenchmark and the
# dirsync-stat tool.
vm_build_programs() {
	local src="$ROOT/kernel-module/tests" pristine sel="$VM/selftests"
	local cc=(gcc -static -O2 -Wall -Wextra -Werror -Wno-format-truncation
		-I"$ROOT/kernel-module/include/uapi")
	pristine=$(pristine_tree)
	rm -rf "$sel"
	mkdir -p "$sel/dirsync" "$VM/root/guest/tests" "$VM/root/guest/bin" "$VM/root/guest/bench"
	cp "$pristine"/tools/testing/selftests/kselftest{,_harness}.h "$sel/"
	cp "$ROOT"/kernel-module/tools/testing/selftests/dirsync/*.c "$sel/dirsync/"
	gcc -static -O2 -Wall -Werror -pthread -I"$ROOT/kernel-module/include/uapi" \
		-o "$VM/root/guest/tests/10-dirsync-selftest" "$sel/dirsync/dirsync_stat_test.c" ||
		die "building the kselftest failed"
	gcc -static -O2 -Wall -Werror -pthread -I"$ROOT/kernel-module/include/uapi" \
		-o "$VM/root/guest/tests/11-dirsync-readdir-selftest" \
		"$sel/dirsync/dirsync_readdir_test.c" ||
		die "building the dirsync_readdir kselftest failed"
	"${cc[@]}" -pthread -o "$VM/root/guest/bench/dirsync-bench" "$src/dirsync_bench.c" ||
		die "building the microbenchmark failed"
	"${cc[@]}" -o "$VM/root/guest/bin/dirsync-stat" "$src/dirsync-stat.c" ||
		die "building dirsync-stat failed"
}

# Packs $VM/root (plus busybox, /init, the guest scripts and build/guest/)
# into $VM/initramfs.cpio with the kernel's gen_init_cpio: no root
# privileges needed for /dev/console.
vm_pack_initramfs() {
	local root="$VM/root" list="$VM/initramfs.list" gen="$VM/gen_init_cpio" pristine
	local busybox applet
	busybox=$(command -v busybox) || die "busybox (busybox-static) is not installed"
	mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,root,etc,guest}
	cp "$busybox" "$root/bin/busybox"
	cp "$ROOT/qemu/guest-init.sh" "$root/init"
	cp "$ROOT/qemu/guest-demo-syscall.sh" "$ROOT/qemu/guest-demo-cli.sh" "$root/guest/"
	chmod 0755 "$root/init" "$root"/guest/guest-demo-*.sh
	cp -a "$ROOT/build/guest/." "$root/guest/"

	if [ ! -x "$gen" ]; then
		pristine=$(pristine_tree)
		gcc -O2 -o "$gen" "$pristine/usr/gen_init_cpio.c" || die "building gen_init_cpio failed"
	fi
	{
		# Parents first: find lists a directory before its contents.
		(cd "$root" && find . -mindepth 1 | LC_ALL=C sort) | while read -r p; do
			p=${p#.}
			if [ -L "$root$p" ]; then
				echo "slink $p $(readlink "$root$p") 0777 0 0"
			elif [ -d "$root$p" ]; then
				echo "dir $p 0755 0 0"
			elif [ -f "$root$p" ]; then
				echo "file $p $root$p $(stat -c %a "$root$p") 0 0"
			fi
		done
		echo "nod /dev/console 0600 0 0 c 5 1"
		echo "nod /dev/ttyS1 0600 0 0 c 4 65"
		for applet in $("$root/bin/busybox" --list); do
			[ "$applet" = busybox ] || [ -e "$root/bin/$applet" ] ||
				echo "slink /bin/$applet busybox 0777 0 0"
		done
	} >"$list"
	"$gen" "$list" >"$VM/initramfs.cpio" || die "packing the initramfs failed"
}

# Everything before the boots but the kernel: the lock, the staged
# userspace, the guest programs and a fresh initramfs.
vm_prepare() {
	vm_lock
	vm_stage_userspace
	rm -rf "$VM/root"
	vm_build_programs
	vm_pack_initramfs
}

# vm_boot LOGDIR TIMEOUT_SECONDS GUEST_ARGS...: boots $BZIMAGE with
# $VM/initramfs.cpio on ${QEMU_SMP:-2} CPUs (multi-threaded TCG unless
# QEMU_ACCEL says otherwise; one CPU per socket: the kernel has no ACPI and
# SeaBIOS's MP table lists only the first CPU of each socket), console to stdout and LOGDIR/console.log,
# results port to LOGDIR/results.log; GUEST_ARGS go on the kernel command
# line (dirsync.* parameters: see qemu/guest-init.sh).  Returns QEMU's (or
# timeout's) status.
vm_boot() {
	local logdir=$1 limit=$2 accel=${QEMU_ACCEL:-tcg} cpus=${QEMU_SMP:-2}
	shift 2
	[ "$accel" = tcg ] && accel=tcg,thread=multi
	mkdir -p "$logdir"
	rm -f "$logdir/results.log" "$logdir/console.log"
	echo "vm: booting $KERNEL_VERSION under QEMU ($accel, $cpus CPUs), timeout ${limit}s" >&2
	set +e
	timeout --foreground -k 10 "$limit" qemu-system-x86_64 \
		-accel "$accel" -m "${QEMU_MEM:-1024}" \
		-smp "$cpus,sockets=$cpus,cores=1,threads=1" \
		-nodefaults -no-reboot -nographic \
		-serial stdio -serial "file:$logdir/results.log" \
		-kernel "$BZIMAGE" -initrd "$VM/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 $* ${QEMU_APPEND:-}" \
		</dev/null 2>&1 | tee "$logdir/console.log"
	local rc=${PIPESTATUS[0]}
	set -e
	return "$rc"
}

# vm_console_problems CONSOLE_LOG: prints the kernel lines (they carry a
# printk timestamp; test output does not) of the console log that match
# KERNEL_PROBLEM_RE; succeeds if there is at least one.
vm_console_problems() {
	grep -aE "\[ *[0-9]+\.[0-9]+\] .*($KERNEL_PROBLEM_RE)" "$1"
}

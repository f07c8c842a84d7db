# shellcheck shell=bash
# Sourced by qemu/run-tests.sh and qemu/demo.sh: builds the guest programs,
# packs the initramfs and boots the patched kernel under QEMU.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM="$ROOT/build/vm"

die() {
	echo "error: $*" >&2
	exit 1
}

# One VM run at a time per work tree: build/vm is shared.
vm_lock() {
	mkdir -p "$ROOT/build"
	exec 8>"$ROOT/build/vm.lock"
	if ! flock -n 8; then
		echo "vm: waiting for another VM run in this tree" >&2
		flock 8
	fi
}

# Builds (or takes from the cache) the kernel; sets BZIMAGE.
vm_kernel() {
	local out
	out=$("$ROOT/scripts/build-kernel.sh") || die "kernel build failed"
	BZIMAGE=$(tail -n1 <<<"$out")
	[ -f "$BZIMAGE" ] || die "no bzImage at '$BZIMAGE'"
	KERNEL_VERSION=$(cat "$ROOT/build/kernel/version")
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

# Builds the static C programs of kernel-module/tests into $VM/root.
vm_build_programs() {
	local src="$ROOT/kernel-module/tests" cc=(gcc -static -O2 -Wall -Wextra -Werror
		-Wno-format-truncation -I"$ROOT/kernel-module/include/uapi")
	mkdir -p "$VM/root/guest/tests" "$VM/root/guest/bin" "$VM/root/guest/bench"
	"${cc[@]}" -o "$VM/root/guest/tests/10-dirsync-stat" "$src/dirsync_stat_test.c" ||
		die "building the syscall tests failed"
	"${cc[@]}" -o "$VM/root/guest/bench/dirsync-bench" "$src/dirsync_bench.c" ||
		die "building the microbenchmark failed"
	"${cc[@]}" -o "$VM/root/guest/bin/dirsync-stat" "$src/dirsync-stat.c" ||
		die "building dirsync-stat failed"
}

# Packs $VM/root (plus busybox, /init and build/guest/) into $VM/initramfs.cpio
# with the kernel's gen_init_cpio: no root privileges needed for /dev/console.
vm_pack_initramfs() {
	local root="$VM/root" list="$VM/initramfs.list" gen="$VM/gen_init_cpio" pristine
	local busybox applet
	busybox=$(command -v busybox) || die "busybox (busybox-static) is not installed"
	mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,root,etc,guest}
	cp "$busybox" "$root/bin/busybox"
	cp "$ROOT/qemu/guest-init.sh" "$root/init"
	cp "$ROOT/qemu/guest-demo.sh" "$root/guest/demo.sh"
	chmod 0755 "$root/init" "$root/guest/demo.sh"
	[ -f "$ROOT/qemu/demo-guest.sh" ] && cp "$ROOT/qemu/demo-guest.sh" "$root/guest/demo-guest.sh"
	cp -a "$ROOT/build/guest/." "$root/guest/"

	if [ ! -x "$gen" ]; then
		# shellcheck source=scripts/kernel-source.sh
		pristine=$(. "$ROOT/scripts/kernel-source.sh" && pristine_tree)
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

# Everything before a boot: the lock, the kernel (built or cached), the
# staged userspace, the guest programs and a fresh initramfs.
vm_prepare() {
	vm_lock
	vm_kernel
	vm_stage_userspace
	rm -rf "$VM/root"
	vm_build_programs
	vm_pack_initramfs
}

# vm_boot MODE TIMEOUT_SECONDS: boots, console to stdout and $VM/console.log,
# results port to $VM/results.log.  Returns QEMU's (or timeout's) status.
vm_boot() {
	local mode=$1 limit=$2 accel=${QEMU_ACCEL:-tcg}
	rm -f "$VM/results.log" "$VM/console.log"
	echo "vm: booting $KERNEL_VERSION under QEMU ($accel), timeout ${limit}s" >&2
	set +e
	timeout --foreground -k 10 "$limit" qemu-system-x86_64 \
		-accel "$accel" -m "${QEMU_MEM:-1024}" -smp 1 \
		-nodefaults -no-reboot -nographic \
		-serial stdio -serial "file:$VM/results.log" \
		-kernel "$BZIMAGE" -initrd "$VM/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 dirsync.mode=$mode ${QEMU_APPEND:-}" \
		</dev/null 2>&1 | tee "$VM/console.log"
	local rc=${PIPESTATUS[0]}
	set -e
	return "$rc"
}

# shellcheck shell=bash
# Shared by every bash script of the repository (sourced): error exit,
# the lock helper and the one pattern that recognises kernel problems.

# die MESSAGE...: prints "error: MESSAGE" on stderr and exits 1.
die() {
	echo "error: $*" >&2
	exit 1
}

# take_lock FD FILE MESSAGE: opens FILE on descriptor FD and holds an
# exclusive flock on it until the shell exits; when someone else holds it,
# prints MESSAGE on stderr and waits.
take_lock() {
	local fd=$1 file=$2 msg=$3
	mkdir -p "$(dirname "$file")"
	eval "exec $fd>\"\$file\""
	if ! flock -n "$fd"; then
		echo "$msg" >&2
		flock "$fd"
	fi
}

# bench_workarea LABEL NAME: sets WORK to a new work area in tmpfs for a
# benchmark (so that no disk's writeback is in its times) and says so,
# with LABEL: a directory NAME.XXXXXX in /dev/shm when that is writable,
# else, as root, a tmpfs of its own mounted on one in /tmp.
# bench_workarea_remove removes it (the caller's EXIT trap runs it).
bench_workarea() {
	BENCH_MOUNTED=
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		WORK=$(mktemp -d "/dev/shm/$2.XXXXXX")
	elif [ "$(id -u)" -eq 0 ]; then
		WORK=$(mktemp -d "/tmp/$2.XXXXXX")
		mount -t tmpfs -o size=4g tmpfs "$WORK"
		BENCH_MOUNTED=1
	else
		die "$1: needs a writable /dev/shm, or root for a tmpfs"
	fi
	echo "$1: work area $WORK ($(stat -f -c %T "$WORK")), $(nproc) cores, ${RUNS:-1} runs each"
}
bench_workarea_remove() {
	[ -n "${WORK:-}" ] || return 0
	if [ -n "${BENCH_MOUNTED:-}" ]; then
		# The files go with the tmpfs.
		umount "$WORK" && rmdir "$WORK"
	else
		rm -rf "$WORK"
	fi
}

# An extended regular expression matching the kernel log lines that mean a
# kernel problem: oops, BUG (including KASAN's "BUG: KASAN:" and
# "BUG: sleeping function called from invalid context"), WARNING (including
# lockdep's "WARNING: possible circular locking dependency"), panics, UBSAN
# and KASAN reports, lockdep's INFO lines, hung tasks, lockups, RCU stalls,
# refcount errors and stack dumps.  Used on the guest's dmesg and on the
# console (qemu/vm-lib.sh), nowhere else.
# shellcheck disable=SC2034 # used by the scripts that source this file
KERNEL_PROBLEM_RE='Kernel panic|Oops|BUG:|WARNING:|Call Trace|general protection fault|UBSAN:|KASAN:|refcount_t:|INFO: task .* blocked for more than|INFO: possible|INFO: lockdep|INFO: rcu|detected stalls|soft lockup|hard LOCKUP|inconsistent lock state|suspicious RCU usage|kernel BUG at'

# bench_sshd_setup LOGIN_SCRIPTS: in $WORK, the keys of an sshd of our own
# (host_key, client_key, authorized_keys) and its sshd_config; sets SSHD,
# the command that starts it. LOGIN_SCRIPTS=hidden (as root, with unshare):
# that sshd sees an empty ~/.bashrc, so that no login script of this
# machine's user is timed as part of either tool. Returns 1 when the
# scripts stay visible.
# shellcheck disable=SC2034 # SSHD is the sourcing script's
bench_sshd_setup() {
	ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
	ssh-keygen -q -t ed25519 -N '' -f "$WORK/client_key"
	cp "$WORK/client_key.pub" "$WORK/authorized_keys"
	cat >"$WORK/sshd_config" <<CONF
HostKey $WORK/host_key
AuthorizedKeysFile $WORK/authorized_keys
PidFile none
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
PermitRootLogin yes
LogLevel QUIET
MaxStartups 200
CONF
	if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/sshd; fi
	SSHD=(/usr/sbin/sshd)
	if [ "$1" = hidden ] && [ "$(id -u)" -eq 0 ] && [ -f "$HOME/.bashrc" ] &&
		command -v unshare >/dev/null; then
		: >"$WORK/empty-bashrc"
		# shellcheck disable=SC2016 # expanded by that shell
		SSHD=(unshare -m --propagation private sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
			hide-bashrc "$WORK/empty-bashrc" "$HOME/.bashrc" /usr/sbin/sshd)
		return 0
	fi
	return 1
}

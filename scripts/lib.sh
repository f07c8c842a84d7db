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

# An extended regular expression matching the kernel log lines that mean a
# kernel problem: oops, BUG (including KASAN's "BUG: KASAN:" and
# "BUG: sleeping function called from invalid context"), WARNING (including
# lockdep's "WARNING: possible circular locking dependency"), panics, UBSAN
# and KASAN reports, lockdep's INFO lines, hung tasks, lockups, RCU stalls,
# refcount errors and stack dumps.  Used on the guest's dmesg and on the
# console (qemu/vm-lib.sh), nowhere else.
# shellcheck disable=SC2034 # used by the scripts that source this file
KERNEL_PROBLEM_RE='Kernel panic|Oops|BUG:|WARNING:|Call Trace|general protection fault|UBSAN:|KASAN:|refcount_t:|INFO: task .* blocked for more than|INFO: possible|INFO: lockdep|INFO: rcu|detected stalls|soft lockup|hard LOCKUP|inconsistent lock state|suspicious RCU usage|kernel BUG at'

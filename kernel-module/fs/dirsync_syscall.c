// SPDX-License-Identifier: GPL-2.0
/*
 * dirsync_stat(2) entry point.  The system call is implemented in Rust in
 * fs/dirsync_stat.rs; the ABI is described in include/uapi/linux/dirsync.h.
 */

#include <linux/syscalls.h>

#include "dirsync.h"

SYSCALL_DEFINE4(dirsync_stat, int, dfd, const char __user *, path,
		struct dirsync_info __user *, info, unsigned int, flags)
{
	return dirsync_stat_rust(dfd, path, info, flags);
}

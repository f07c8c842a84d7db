// SPDX-License-Identifier: GPL-2.0
/*
 * dirsync_stat(2) entry point.  The system call is implemented in Rust in
 * fs/dirsync_stat.rs; the ABI is described in include/uapi/linux/dirsync.h.
 * dirsync-series: begin readdir
 * dirsync_readdir(2) likewise, in fs/dirsync_readdir.rs.
 * dirsync-series: end readdir
 */

#include <linux/syscalls.h>

#include "dirsync.h"

SYSCALL_DEFINE4(dirsync_stat, int, dfd, const char __user *, path,
		struct dirsync_info __user *, info, unsigned int, flags)
{
	return dirsync_stat_rust(dfd, path, info, flags);
}
/* dirsync-series: begin readdir */

SYSCALL_DEFINE4(dirsync_readdir, unsigned int, fd, void __user *, buf,
		size_t, size, unsigned int, flags)
{
	return dirsync_readdir_rust(fd, buf, size, flags);
}
/* dirsync-series: end readdir */

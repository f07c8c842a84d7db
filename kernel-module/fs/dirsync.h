/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interface between the dirsync_stat(2) C entry point and its Rust
 * implementation.
 * dirsync-series: begin readdir
 * The same for dirsync_readdir(2).
 * dirsync-series: end readdir
 */
#ifndef _FS_DIRSYNC_H
#define _FS_DIRSYNC_H

#include <linux/compiler_types.h>
/* dirsync-series: begin readdir */
#include <linux/types.h>
/* dirsync-series: end readdir */

struct dirsync_info;

/* Implemented in Rust in fs/dirsync_stat.rs. */
long dirsync_stat_rust(int dfd, const char __user *path,
		       struct dirsync_info __user *info, unsigned int flags);
/* dirsync-series: begin readdir */

/* Implemented in Rust in fs/dirsync_readdir.rs. */
long dirsync_readdir_rust(unsigned int fd, void __user *buf, size_t size,
			  unsigned int flags);
/* dirsync-series: end readdir */

#endif /* _FS_DIRSYNC_H */

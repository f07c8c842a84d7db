/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interface between the dirsync_stat(2) C entry point and its Rust
 * implementation.
 */
#ifndef _FS_DIRSYNC_H
#define _FS_DIRSYNC_H

#include <linux/compiler_types.h>

struct dirsync_info;

/* Implemented in Rust in fs/dirsync_stat.rs. */
long dirsync_stat_rust(int dfd, const char __user *path,
		       struct dirsync_info __user *info, unsigned int flags);

#endif /* _FS_DIRSYNC_H */

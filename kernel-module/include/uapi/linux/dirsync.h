/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dirsync_stat(2): the metadata a directory synchronizer compares, in one
 * kernel transition.
 *
 *   long dirsync_stat(int dfd, const char __user *path,
 *                     struct dirsync_info __user *info, unsigned int flags);
 *
 * @path is resolved relative to @dfd (AT_FDCWD for the working directory)
 * with the caller's credentials, following a final symlink unless @flags
 * has AT_SYMLINK_NOFOLLOW.  AT_EMPTY_PATH with an empty @path describes
 * @dfd itself.  Any other flag bit is -EINVAL.
 *
 * A missing final component is not an error: the call returns 0 with
 * @info->exists == 0 and every other byte of @info zero (a dangling final
 * symlink, when followed, counts as missing).  Other failures return
 * -errno: EFAULT, ENAMETOOLONG, ENOENT (missing directory in the prefix,
 * or an empty @path without AT_EMPTY_PATH), ENOTDIR, ELOOP, EACCES, EBADF,
 * EINVAL.
 *
 * Every byte of struct dirsync_info is written on success, padding and
 * reserved fields as zero.  Its layout is the same on every 64-bit
 * architecture (80 bytes, 8-byte aligned).
 *
 * Discovery: a kernel that implements the call exposes, world-readable,
 *   DIRSYNC_SYSFS_DIR "/syscall_nr"   the decimal syscall number, "463\n"
 *                                     on x86-64
 *   DIRSYNC_SYSFS_DIR "/abi_version"  the decimal DIRSYNC_ABI_VERSION
 * Userspace must read both and check the ABI version before it executes
 * the number: on kernels without the call the same number may belong to
 * another syscall (463 is setxattrat(2) since Linux 6.13).
 */
#ifndef _UAPI_LINUX_DIRSYNC_H
#define _UAPI_LINUX_DIRSYNC_H

#include <linux/types.h>

/* Bumped on any incompatible change of struct dirsync_info or the call. */
#define DIRSYNC_ABI_VERSION	1

#define DIRSYNC_SYSFS_DIR	"/sys/kernel/dirsync"

struct dirsync_info {
	__u32 exists;		/* 1 if the path names an object, else 0 */
	__u32 mode;		/* S_IFMT type bits and permission bits */
	__u64 size;		/* size in bytes (symlink: target length) */
	__s64 mtime;		/* last modification, seconds since epoch */
	__u32 mtime_nsec;	/* nanoseconds part of mtime, < 1e9 */
	__u32 __pad0;		/* always zero */
	__u64 ino;		/* inode number */
	__u32 dev_major;	/* device of the containing file system */
	__u32 dev_minor;
	__u64 __reserved[4];	/* always zero; room for later ABI versions */
};

#endif /* _UAPI_LINUX_DIRSYNC_H */

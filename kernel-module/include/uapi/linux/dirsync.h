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
 * has AT_SYMLINK_NOFOLLOW.  Automounts are never triggered (as fstatat(2)):
 * AT_NO_AUTOMOUNT is implied and accepted.  AT_EMPTY_PATH with an empty
 * @path describes @dfd itself, which may be any file descriptor, O_PATH
 * ones included; as in statx(2), a NULL @path is accepted as empty when
 * @dfd is not AT_FDCWD and AT_SYMLINK_NOFOLLOW is not given (-EFAULT
 * otherwise), and then no path walk is done at all.  At most one of
 * AT_STATX_SYNC_AS_STAT, AT_STATX_FORCE_SYNC and AT_STATX_DONT_SYNC asks
 * for the synchronisation statx(2) does.  Any other flag bit, or
 * AT_STATX_FORCE_SYNC with AT_STATX_DONT_SYNC, is -EINVAL.
 *
 * A missing final component is not an error: the call returns 0 with
 * @info->exists == 0 and every other byte of @info zero (a dangling final
 * symlink, when followed, counts as missing).  An object present during
 * the whole call is never reported missing.  Other failures return -errno:
 * EFAULT (bad @path or @info), ENAMETOOLONG, ENOENT (a missing directory in
 * the prefix, or an empty @path without AT_EMPTY_PATH), ENOTDIR, ELOOP,
 * EACCES, EBADF, EINVAL, ENOMEM.
 *
 * Every byte of struct dirsync_info is written on success, unused fields
 * and reserved words as zero.  Its layout is the same on every
 * architecture (80 bytes, no implicit padding).
 *
 * Extensibility: the ABI grows by result mask bits, never by changing the
 * layout or DIRSYNC_ABI_VERSION.  @info->mask holds the DIRSYNC_INFO_* bits
 * of the fields that hold a value; a field whose bit is clear is zero.
 * When @info->exists == 1, DIRSYNC_INFO_TYPE, DIRSYNC_INFO_INO and
 * DIRSYNC_INFO_DEV are always set, the others when the file system
 * provides the value (as statx(2)'s stx_mask).  A later kernel may use
 * __spare0 and __spare[] for new fields, each with a new mask bit:
 * userspace must ignore bits it does not know, and a newer userspace on
 * an older kernel sees the new bits clear and the new fields zero (it
 * decides by the mask, never by a version).  DIRSYNC_INFO_BASIC keeps its
 * meaning: the six fields of the first ABI.
 *
 * DIRSYNC_INFO_UID, DIRSYNC_INFO_GID and DIRSYNC_INFO_NLINK came later,
 * in the first words of the former __spare[]: ->uid and ->gid are the
 * owner and group as statx(2) gives them (mapped into the caller's user
 * namespace, the overflow id when they have no mapping there), ->nlink
 * the link count.
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

/* Stays 1: the ABI grows by DIRSYNC_INFO_* bits, never by version bumps. */
#define DIRSYNC_ABI_VERSION	1

#define DIRSYNC_SYSFS_DIR	"/sys/kernel/dirsync"

/* dirsync_info.mask bits: which fields hold a value (like stx_mask). */
#define DIRSYNC_INFO_TYPE	0x0001U	/* S_IFMT bits of mode */
#define DIRSYNC_INFO_MODE	0x0002U	/* permission bits of mode */
#define DIRSYNC_INFO_SIZE	0x0004U	/* size */
#define DIRSYNC_INFO_MTIME	0x0008U	/* mtime and mtime_nsec */
#define DIRSYNC_INFO_INO	0x0010U	/* ino */
#define DIRSYNC_INFO_DEV	0x0020U	/* dev_major and dev_minor */
#define DIRSYNC_INFO_BASIC	0x003fU	/* everything above */
#define DIRSYNC_INFO_UID	0x0040U	/* uid */
#define DIRSYNC_INFO_GID	0x0080U	/* gid */
#define DIRSYNC_INFO_NLINK	0x0100U	/* nlink */

struct dirsync_info {
	__u32 exists;		/* 1 if the path names an object, else 0 */
	__u32 mode;		/* S_IFMT type bits and permission bits */
	__u64 size;		/* size in bytes, as statx's stx_size */
	__s64 mtime;		/* last modification, seconds since epoch */
	__u32 mtime_nsec;	/* nanoseconds part of mtime, < 1e9 */
	__u32 mask;		/* DIRSYNC_INFO_* bits of the valid fields */
	__u64 ino;		/* inode number */
	__u32 dev_major;	/* device of the containing file system */
	__u32 dev_minor;
	__u32 uid;		/* owner, in the caller's user namespace */
	__u32 gid;		/* group, in the caller's user namespace */
	__u32 nlink;		/* number of hard links */
	__u32 __spare0;		/* zero */
	__u64 __spare[2];	/* zero; later fields come with new mask bits */
};
/* dirsync-series: begin readdir */

/*
 * dirsync_readdir(2): a directory's entries and their metadata in one call.
 *
 *   long dirsync_readdir(unsigned int fd, void __user *buf, size_t size,
 *                        unsigned int flags);
 *
 * @fd is a directory opened for reading (not O_PATH).  The call fills @buf
 * with packed records, each a struct dirsync_dirent followed by the name,
 * and returns the number of bytes written, or 0 at the end of the
 * directory.  It resumes where the previous call on the same open file
 * stopped: the position is the file's own (as getdents64(2), serialised
 * by the file position lock), never an offset from userspace.
 *
 * "." and ".." are not reported.  Each entry is looked up by name from
 * @fd's directory, without following a final symlink (entries are never
 * followed: AT_SYMLINK_NOFOLLOW is implied and accepted), with the
 * caller's credentials and without any directory lock held from the
 * listing; its metadata is what fstatat(fd, name, AT_SYMLINK_NOFOLLOW)
 * would give at that moment, a mount point's being the mounted root's.
 *
 * No entry is lost: an entry is accepted only once its record's place in
 * @buf is known to fit and to be writable; one that does not fit, or
 * whose place faults, stays at the file position for the next call (a
 * buffer that faults part way gives a short count, as getdents64(2)).
 * Every record returned is complete.  Should another thread unmap or
 * write-protect @buf during the call, the call fails with EFAULT and the
 * entries it had accepted are not listed again on this open file.
 *
 * ->error: 0 and ->info describes the entry, or a positive errno and
 * ->info is all zero.  ENOENT: the entry vanished between listing and
 * lookup; EACCES: the directory is not searchable.  Any other errno
 * (EINTR for a fatal signal, ENOMEM, EIO, ESTALE, ...) means the call
 * stopped describing entries there: that record and the following ones
 * of the same call carry it, their names are listed all the same, and
 * the caller describes them itself (fstatat(2), dirsync_stat(2)).
 * ENAMETOOLONG: the name is longer than DIRSYNC_READDIR_NAME_MAX bytes;
 * the record has ->namelen 0 and no name (no Linux file system returns
 * such names: FUSE's limit is 1024 bytes, PATH_MAX 4096 with the NUL).
 *
 * ->d_type is what the directory said when the entry was listed
 * (DT_UNKNOWN on file systems that do not know), ->info.mode what the
 * lookup found afterwards: after a rename over the name in between they
 * can disagree (DT_REG and a directory, say).  ->info.mode is the one
 * that matches the rest of ->info.
 *
 * Bounded work: one call returns at most 65536 bytes of records (about
 * 600 entries with short names), whatever @size; it returns early, with
 * the records it has, when a signal is pending, and stops looking entries
 * up when the task is being killed.
 *
 * @flags: 0, or AT_SYMLINK_NOFOLLOW, AT_NO_AUTOMOUNT, and at most one of
 * the AT_STATX_SYNC_* flags; anything else is -EINVAL.
 *
 * Errors: EBADF (@fd not open, or O_PATH), ENOTDIR (@fd not a directory
 * that can be read), EINVAL (bad @flags, or @size below
 * DIRSYNC_READDIR_BUF_MIN, the size of the largest record), EFAULT
 * (@buf not writable where the first record goes), ENOENT (the directory
 * was removed), ENOMEM, and what the file system's iteration returns.
 *
 * Records: ->reclen is the whole record (header, name, NUL, zero padding)
 * and a multiple of 8, so the next record starts at the current one plus
 * ->reclen; ->namelen excludes the NUL.  ->info is a struct dirsync_info
 * with ->info.exists == 1 and ->info.mask as for dirsync_stat(2) when
 * ->error is 0.  Every byte up to the returned length is written,
 * padding and reserved fields as zero.
 *
 * Discovery: DIRSYNC_SYSFS_DIR "/readdir_syscall_nr" holds the decimal
 * number ("464\n" on x86-64) on kernels that implement the call; without
 * that file userspace must not execute it.
 */
struct dirsync_dirent {
	__u16 reclen;		/* length of this record, a multiple of 8 */
	__u8 d_type;		/* DT_* type from the directory, as getdents64 */
	__u8 __pad0;		/* zero */
	__u16 namelen;		/* bytes of name, without the NUL */
	__u16 __pad1;		/* zero */
	__s32 error;		/* 0, or a positive errno: info is zero */
	__u32 __pad2;		/* zero */
	struct dirsync_info info;	/* the entry's metadata when error == 0 */
	char name[];		/* namelen bytes, NUL, zero padding */
};

/* The longest name a record carries: PATH_MAX - 1. */
#define DIRSYNC_READDIR_NAME_MAX	4095
/* The largest record: 96-byte header, the longest name, NUL, to 8. */
#define DIRSYNC_READDIR_BUF_MIN		4192
/* dirsync-series: end readdir */

#endif /* _UAPI_LINUX_DIRSYNC_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the in-VM test, the microbenchmark and the dirsync-stat tool:
 * discovery through /sys/kernel/dirsync and the raw system call.
 */
#ifndef DIRSYNC_TEST_H
#define DIRSYNC_TEST_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/dirsync.h>

/* Reads a decimal number followed by a newline from a sysfs file. */
static inline long dirsync_read_sysfs(const char *name)
{
	char path[256], buf[64], *end;
	long val;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", DIRSYNC_SYSFS_DIR, name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n <= 1 || buf[n - 1] != '\n')
		return -1;
	buf[n] = 0;
	errno = 0;
	val = strtol(buf, &end, 10);
	if (errno || end != buf + n - 1 || val < 0)
		return -1;
	return val;
}

/*
 * The syscall number if the running kernel has dirsync_stat with the ABI
 * this program was built for, else -1.  Never guesses a number.
 */
static inline long dirsync_discover(void)
{
	long nr = dirsync_read_sysfs("syscall_nr");

	if (nr < 0 || dirsync_read_sysfs("abi_version") != DIRSYNC_ABI_VERSION)
		return -1;
	return nr;
}

/*
 * The dirsync_readdir syscall number if the running kernel announces it
 * (with the ABI version this program was built for), else -1.
 */
static inline long dirsync_discover_readdir(void)
{
	long nr = dirsync_read_sysfs("readdir_syscall_nr");

	if (nr < 0 || dirsync_read_sysfs("abi_version") != DIRSYNC_ABI_VERSION)
		return -1;
	return nr;
}

/* Returns 0 or -errno (not -1 with errno) to keep the tests terse. */
static inline long dirsync_stat_raw(long nr, int dfd, const void *path,
				    void *info, unsigned long flags)
{
	long ret = syscall(nr, dfd, path, info, flags);

	return ret < 0 ? -errno : ret;
}

#endif

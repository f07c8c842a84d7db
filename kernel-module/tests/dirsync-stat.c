// SPDX-License-Identifier: GPL-2.0
/*
 * dirsync-stat [-n] PATH...: prints what dirsync_stat(2) answers for each
 * PATH (-n: AT_SYMLINK_NOFOLLOW).  Finds the call through /sys/kernel/dirsync
 * and refuses to run on a kernel that does not announce it.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "dirsync_test.h"

static const char *type_name(unsigned int mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "regular file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	}
	return "?";
}

int main(int argc, char **argv)
{
	unsigned int flags = 0;
	int status = 0;
	long nr;
	int i = 1;

	if (argc > 1 && !strcmp(argv[1], "-n")) {
		flags = AT_SYMLINK_NOFOLLOW;
		i++;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: dirsync-stat [-n] PATH...\n");
		return 2;
	}
	nr = dirsync_discover();
	if (nr < 0) {
		fprintf(stderr, "dirsync-stat: this kernel does not announce dirsync_stat in %s\n",
			DIRSYNC_SYSFS_DIR);
		return 1;
	}
	for (; i < argc; i++) {
		struct dirsync_info info;
		long ret = dirsync_stat_raw(nr, AT_FDCWD, argv[i], &info, flags);

		if (ret) {
			printf("%s: error %s\n", argv[i], strerror((int)-ret));
			status = 1;
		} else if (!info.exists) {
			printf("%s: exists=0\n", argv[i]);
		} else {
			printf("%s: exists=1 %s mode=%04o size=%llu mtime=%lld.%09u ino=%llu dev=%u:%u\n",
			       argv[i], type_name(info.mode), info.mode & 07777,
			       (unsigned long long)info.size, (long long)info.mtime,
			       info.mtime_nsec, (unsigned long long)info.ino,
			       info.dev_major, info.dev_minor);
		}
	}
	return status;
}

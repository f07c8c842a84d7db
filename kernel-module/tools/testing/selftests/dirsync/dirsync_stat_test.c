// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of dirsync_stat(2), with statx(2) as the oracle.
 *
 * The syscall number is taken from /sys/kernel/dirsync (never guessed: on
 * a kernel without the call the number may belong to another system call,
 * 463 is setxattrat(2) since Linux 6.13).  Most tests compare each answer
 * field by field with statx(2) on the same dfd, path and flags:
 *
 *  - statx succeeds: dirsync_stat returns 0, exists == 1, the mask holds
 *    the DIRSYNC_INFO_* bits of the fields statx reported (TYPE, INO and
 *    DEV always), every field with its bit set equals statx's, every field
 *    with its bit clear and the spare words are zero;
 *  - statx fails with ENOENT and the parent of the final component is a
 *    directory: dirsync_stat returns 0 and all 80 bytes are zero;
 *  - statx fails otherwise: dirsync_stat fails with the same errno.
 *
 * NULL paths included: as statx, dirsync_stat takes NULL as an empty path
 * only with AT_EMPTY_PATH, a dfd other than AT_FDCWD and no
 * AT_SYMLINK_NOFOLLOW.
 *
 * Run as root (the tests use mount(2), chmod and setresuid(2)); the
 * unprivileged parts run in children with uid/gid 65534.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/dirsync.h>

#include "../kselftest_harness.h"

#ifndef AT_STATX_SYNC_AS_STAT
#define AT_STATX_SYNC_AS_STAT	0x0000
#endif
#ifndef AT_STATX_FORCE_SYNC
#define AT_STATX_FORCE_SYNC	0x2000
#endif
#ifndef AT_STATX_DONT_SYNC
#define AT_STATX_DONT_SYNC	0x4000
#endif

#define NOBODY		65534
/* The owner and group of the corpus' "owned": neither root nor nobody. */
#define OTHER_UID	1234
#define OTHER_GID	5678
/* Every DIRSYNC_INFO_* bit this test knows. */
#define ALL_BITS	(DIRSYNC_INFO_BASIC | DIRSYNC_INFO_UID | DIRSYNC_INFO_GID | \
			 DIRSYNC_INFO_NLINK)
#define INFO_SIZE	((int)sizeof(struct dirsync_info))

/* The flags dirsync_stat accepts (and statx accepts too). */
#define VALID_FLAGS	(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | \
			 AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC)

static long ds_nr = -1;

/* Reads a decimal number followed by a newline from a sysfs file. */
static long read_sysfs(const char *name)
{
	char path[256], buf[64], *end;
	ssize_t n;
	long val;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", DIRSYNC_SYSFS_DIR, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 1 || buf[n - 1] != '\n')
		return -1;
	buf[n] = 0;
	errno = 0;
	val = strtol(buf, &end, 10);
	if (errno || end != buf + n - 1 || val < 0)
		return -1;
	return val;
}

static void __attribute__((constructor)) discover(void)
{
	long nr = read_sysfs("syscall_nr");

	if (nr > 0 && read_sysfs("abi_version") == DIRSYNC_ABI_VERSION)
		ds_nr = nr;
}

/* dirsync_stat() as is.  Returns 0 or -errno. */
static long raw_ds(int dfd, const void *path, void *info, unsigned long flags)
{
	long ret = syscall(ds_nr, dfd, path, info, flags);

	return ret < 0 ? -errno : ret;
}

/* dirsync_stat() with @info filled with 0xa5 first.  0 or -errno. */
static long sys_ds(int dfd, const char *path, struct dirsync_info *info, unsigned long flags)
{
	memset(info, 0xa5, INFO_SIZE);
	return raw_ds(dfd, path, info, flags);
}

/* Raw statx(2) (glibc's may check arguments itself).  0 or -errno. */
static long sys_statx(int dfd, const char *path, unsigned int flags, struct statx *sx)
{
	long ret;

	memset(sx, 0, sizeof(*sx));
	ret = syscall(SYS_statx, dfd, path, flags, STATX_BASIC_STATS, sx);
	return ret < 0 ? -errno : ret;
}

static bool all_bytes(const void *p, size_t n, unsigned char v)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i] != v)
			return false;
	return true;
}

/*
 * Whether the parent of the final component of @path (relative to @dfd)
 * is a directory, as statx sees it: the answer for a missing name is
 * exists == 0 only then.
 */
static bool parent_is_dir(int dfd, const char *path)
{
	char buf[PATH_MAX + 2];
	struct statx sx;
	size_t len;
	char *slash;

	if (!path || !*path)
		return false;
	len = strnlen(path, PATH_MAX + 1);
	if (len > PATH_MAX)
		return false;
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = 0;
	slash = strrchr(buf, '/');
	if (!slash)
		memcpy(buf, ".", 2);
	else
		slash[1] = 0;
	return sys_statx(dfd, buf, 0, &sx) == 0 && S_ISDIR(sx.stx_mode);
}

static const char *show_path(const char *path)
{
	static char buf[96];

	if (!path)
		return "(null)";
	if (strlen(path) < 80)
		return path;
	snprintf(buf, sizeof(buf), "%.40s...(%zu bytes)", path, strlen(path));
	return buf;
}

/* Fields that may differ between two lookups of the same name. */
#define VOLATILE_INO	1	/* /proc/<pid>: a new inode per lookup */
#define VOLATILE_NLINK	2	/* /proc: its link count follows the processes */

/* Logs a difference between dirsync_stat and statx; returns false. */
static bool __printf(6, 7)
mismatch(struct __test_metadata *_metadata, const char *what, int dfd,
	 const char *path, unsigned int flags, const char *fmt, ...)
{
	va_list ap;

	fprintf(TH_LOG_STREAM, "# %s: %s: dfd %d path \"%s\" flags %#x: ",
		_metadata->name, what, dfd, show_path(path), flags);
	va_start(ap, fmt);
	vfprintf(TH_LOG_STREAM, fmt, ap);
	va_end(ap);
	fputc('\n', TH_LOG_STREAM);
	return false;
}

/*
 * Compares dirsync_stat(@dfd, @path, @flags) with statx.  Returns true when
 * they agree; logs the difference otherwise (@what says where).
 */
static bool agrees(struct __test_metadata *_metadata, const char *what,
		   int dfd, const char *path, unsigned int flags, int volatile_fields)
{
	struct dirsync_info info;
	unsigned int emask;
	struct statx sx;
	long sr, dr;

	sr = sys_statx(dfd, path, flags, &sx);
	dr = sys_ds(dfd, path, &info, flags);

#define MISMATCH(fmt, ...) \
	mismatch(_metadata, what, dfd, path, flags, fmt, ##__VA_ARGS__)

	if (sr == -ENOENT && parent_is_dir(dfd, path)) {
		if (dr != 0)
			return MISMATCH("statx ENOENT, parent exists: want exists=0, got %s",
				 strerror((int)-dr));
		if (!all_bytes(&info, INFO_SIZE, 0))
			return MISMATCH("exists=0 but not all bytes zero (exists %u mask %#x)",
				 info.exists, info.mask);
		return true;
	}
	if (sr < 0) {
		if (dr != sr)
			return MISMATCH("statx %s, dirsync_stat %s (exists %u)", strerror((int)-sr),
				 dr ? strerror((int)-dr) : "0", dr ? 0 : info.exists);
		return true;
	}
	if (dr != 0)
		return MISMATCH("statx succeeds, dirsync_stat %s", strerror((int)-dr));
	if (info.exists != 1)
		return MISMATCH("statx succeeds, exists %u", info.exists);

	emask = DIRSYNC_INFO_TYPE | DIRSYNC_INFO_INO | DIRSYNC_INFO_DEV;
	if (sx.stx_mask & STATX_MODE)
		emask |= DIRSYNC_INFO_MODE;
	if (sx.stx_mask & STATX_SIZE)
		emask |= DIRSYNC_INFO_SIZE;
	if (sx.stx_mask & STATX_MTIME)
		emask |= DIRSYNC_INFO_MTIME;
	if (sx.stx_mask & STATX_UID)
		emask |= DIRSYNC_INFO_UID;
	if (sx.stx_mask & STATX_GID)
		emask |= DIRSYNC_INFO_GID;
	if (sx.stx_mask & STATX_NLINK)
		emask |= DIRSYNC_INFO_NLINK;
	if (info.mask != emask)
		return MISMATCH("mask %#x, want %#x (stx_mask %#x)", info.mask, emask, sx.stx_mask);
	if ((info.mode & S_IFMT) != (sx.stx_mode & S_IFMT))
		return MISMATCH("type %#o, statx %#o", info.mode & S_IFMT, sx.stx_mode & S_IFMT);
	if ((info.mode & ~S_IFMT) != ((emask & DIRSYNC_INFO_MODE) ? sx.stx_mode & ~S_IFMT : 0))
		return MISMATCH("permissions %#o, statx %#o", info.mode & ~S_IFMT,
			 sx.stx_mode & ~S_IFMT);
	if (info.size != ((emask & DIRSYNC_INFO_SIZE) ? sx.stx_size : 0))
		return MISMATCH("size %llu, statx %llu", (unsigned long long)info.size,
			 (unsigned long long)sx.stx_size);
	if (info.dev_major != sx.stx_dev_major || info.dev_minor != sx.stx_dev_minor)
		return MISMATCH("dev %u:%u, statx %u:%u", info.dev_major, info.dev_minor,
			 sx.stx_dev_major, sx.stx_dev_minor);
	if (info.uid != ((emask & DIRSYNC_INFO_UID) ? sx.stx_uid : 0) ||
	    info.gid != ((emask & DIRSYNC_INFO_GID) ? sx.stx_gid : 0))
		return MISMATCH("owner %u:%u, statx %u:%u", info.uid, info.gid,
			 sx.stx_uid, sx.stx_gid);
	if (!(volatile_fields & VOLATILE_NLINK) &&
	    info.nlink != ((emask & DIRSYNC_INFO_NLINK) ? sx.stx_nlink : 0))
		return MISMATCH("nlink %u, statx %u", info.nlink, sx.stx_nlink);
	if (info.__spare0 || !all_bytes(info.__spare, sizeof(info.__spare), 0))
		return MISMATCH("__spare0 or __spare not zero");
	if (volatile_fields & VOLATILE_INO)
		return true;
	if (info.ino != sx.stx_ino)
		return MISMATCH("ino %llu, statx %llu", (unsigned long long)info.ino,
			 (unsigned long long)sx.stx_ino);
	if (emask & DIRSYNC_INFO_MTIME) {
		if (info.mtime != sx.stx_mtime.tv_sec || info.mtime_nsec != sx.stx_mtime.tv_nsec)
			return MISMATCH("mtime %lld.%09u, statx %lld.%09u", (long long)info.mtime,
				 info.mtime_nsec, (long long)sx.stx_mtime.tv_sec,
				 sx.stx_mtime.tv_nsec);
	} else if (info.mtime || info.mtime_nsec) {
		return MISMATCH("mtime set without DIRSYNC_INFO_MTIME");
	}
	return true;
#undef MISMATCH
}

/* EXPECT that dirsync_stat and statx agree. */
#define EXPECT_AGREE(what, dfd, path, flags) \
	EXPECT_TRUE(agrees(_metadata, what, dfd, path, flags, 0))

/* EXPECT dirsync_stat() to return @want_ret and, if 0, @want_exists. */
static void expect_ds(struct __test_metadata *_metadata, long want_ret, int want_exists,
		      int dfd, const char *path, unsigned long flags)
{
	struct dirsync_info i;
	long r = sys_ds(dfd, path, &i, flags);

	EXPECT_EQ(want_ret, r) TH_LOG("path \"%s\" flags %#lx: %s", show_path(path),
				      flags, r ? strerror((int)-r) : "0");
	if (r == 0)
		EXPECT_EQ(want_exists, (int)i.exists) TH_LOG("path \"%s\"", show_path(path));
}

#define EXPECT_DS(want_ret, want_exists, dfd, path, flags) \
	expect_ds(_metadata, want_ret, want_exists, dfd, path, flags)

/*
 * EXPECT dirsync_stat() of @path to give these owner, group and link
 * count, with their mask bits: the oracle (statx) could be wrong the same
 * way, these numbers cannot.
 */
static void expect_ids(struct __test_metadata *_metadata, const char *path,
		       __u32 uid, __u32 gid, __u32 nlink)
{
	const __u32 bits = DIRSYNC_INFO_UID | DIRSYNC_INFO_GID | DIRSYNC_INFO_NLINK;
	struct dirsync_info i;

	ASSERT_EQ(0, sys_ds(AT_FDCWD, path, &i, AT_SYMLINK_NOFOLLOW));
	EXPECT_EQ(bits, i.mask & bits) TH_LOG("%s: mask %#x", path, i.mask);
	EXPECT_EQ(uid, i.uid) TH_LOG("%s", path);
	EXPECT_EQ(gid, i.gid) TH_LOG("%s", path);
	EXPECT_EQ(nlink, i.nlink) TH_LOG("%s", path);
}

static void write_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data) || close(fd))
		ksft_exit_fail_msg("creating %s: %s\n", path, strerror(errno));
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Drops to uid/gid @uid in the calling process (a child). */
static bool become(uid_t uid)
{
	return setgroups(0, NULL) == 0 && setresgid(uid, uid, uid) == 0 &&
	       setresuid(uid, uid, uid) == 0;
}

/*
 * Runs @fn(_metadata, arg) as @uid: in this process for root, else in a
 * child with dropped credentials.  EXPECT_*() works in the child
 * (_metadata is shared); ASSERT_*() must not be used there.
 */
static void run_as(struct __test_metadata *_metadata, uid_t uid,
		   void (*fn)(struct __test_metadata *, void *), void *arg)
{
	int status;
	pid_t pid;

	if (uid == 0) {
		fn(_metadata, arg);
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (!become(uid)) {
			TH_LOG("setresuid(%u): %s", uid, strerror(errno));
			_exit(1);
		}
		fn(_metadata, arg);
		fflush(stderr);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static char *make_tmpdir(void)
{
	char *dir = strdup("/tmp/dirsync_stat_test.XXXXXX");

	if (!dir || !mkdtemp(dir) || chmod(dir, 0755))
		ksft_exit_fail_msg("mkdtemp: %s\n", strerror(errno));
	return dir;
}

static void read_abi_version(struct __test_metadata *_metadata, void *arg)
{
	int fd = open(DIRSYNC_SYSFS_DIR "/abi_version", O_RDONLY);
	char b[16] = { 0 };

	EXPECT_LE(0, fd);
	EXPECT_EQ(2, read(fd, b, sizeof(b)));
	EXPECT_STREQ("1\n", b);
	close(fd);
}

TEST(discovery)
{
	/* readdir_syscall_nr is dirsync_readdir's (dirsync_readdir_test.c) */
	const char * const names[] = { "abi_version", "readdir_syscall_nr", "syscall_nr" };
	char path[256], buf[16];
	struct dirent *de;
	struct stat st;
	int n = 0, fd;
	DIR *d;

	d = opendir(DIRSYNC_SYSFS_DIR);
	ASSERT_NE(NULL, d) TH_LOG("%s: %s", DIRSYNC_SYSFS_DIR, strerror(errno));
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		EXPECT_TRUE(!strcmp(de->d_name, names[0]) || !strcmp(de->d_name, names[1]) ||
			    !strcmp(de->d_name, names[2]))
			TH_LOG("unexpected file %s", de->d_name);
		n++;
	}
	closedir(d);
	EXPECT_EQ(3, n);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", DIRSYNC_SYSFS_DIR, names[i]);
		ASSERT_EQ(0, stat(path, &st));
		EXPECT_TRUE(S_ISREG(st.st_mode));
		EXPECT_EQ(0444, st.st_mode & 07777) TH_LOG("%s mode %o", path, st.st_mode);
		EXPECT_EQ(0, st.st_uid);
	}
	EXPECT_EQ(DIRSYNC_ABI_VERSION, read_sysfs("abi_version"));
	EXPECT_EQ(1, DIRSYNC_ABI_VERSION);
#ifdef __x86_64__
	EXPECT_EQ(463, read_sysfs("syscall_nr"));
#endif
	EXPECT_EQ(read_sysfs("syscall_nr"), ds_nr);
	/* Exact contents, and readable by anyone. */
	run_as(_metadata, NOBODY, read_abi_version, NULL);
	fd = open(DIRSYNC_SYSFS_DIR "/syscall_nr", O_RDONLY);
	ASSERT_LE(0, fd);
	memset(buf, 0, sizeof(buf));
	EXPECT_LT(1, read(fd, buf, sizeof(buf) - 1));
	close(fd);
	snprintf(path, sizeof(path), "%ld\n", ds_nr);
	EXPECT_STREQ(path, buf);
	/* A write is refused. */
	EXPECT_EQ(-1, open(DIRSYNC_SYSFS_DIR "/syscall_nr", O_WRONLY));
}

TEST(struct_layout)
{
	EXPECT_EQ(80, sizeof(struct dirsync_info));
	EXPECT_EQ(0, offsetof(struct dirsync_info, exists));
	EXPECT_EQ(4, offsetof(struct dirsync_info, mode));
	EXPECT_EQ(8, offsetof(struct dirsync_info, size));
	EXPECT_EQ(16, offsetof(struct dirsync_info, mtime));
	EXPECT_EQ(24, offsetof(struct dirsync_info, mtime_nsec));
	EXPECT_EQ(28, offsetof(struct dirsync_info, mask));
	EXPECT_EQ(32, offsetof(struct dirsync_info, ino));
	EXPECT_EQ(40, offsetof(struct dirsync_info, dev_major));
	EXPECT_EQ(44, offsetof(struct dirsync_info, dev_minor));
	EXPECT_EQ(48, offsetof(struct dirsync_info, uid));
	EXPECT_EQ(52, offsetof(struct dirsync_info, gid));
	EXPECT_EQ(56, offsetof(struct dirsync_info, nlink));
	EXPECT_EQ(60, offsetof(struct dirsync_info, __spare0));
	EXPECT_EQ(64, offsetof(struct dirsync_info, __spare));
	EXPECT_EQ(0x3f, DIRSYNC_INFO_BASIC);
	EXPECT_EQ(0x40, DIRSYNC_INFO_UID);
	EXPECT_EQ(0x80, DIRSYNC_INFO_GID);
	EXPECT_EQ(0x100, DIRSYNC_INFO_NLINK);
	EXPECT_EQ(DIRSYNC_INFO_BASIC, DIRSYNC_INFO_TYPE | DIRSYNC_INFO_MODE |
		  DIRSYNC_INFO_SIZE | DIRSYNC_INFO_MTIME | DIRSYNC_INFO_INO |
		  DIRSYNC_INFO_DEV);
}

/*
 * The corpus: a small tree, the paths below relative to it (or absolute),
 * tried with every dfd and flag combination, as root and as nobody.
 */
FIXTURE(corpus) {
	char *dir;
	char *long_ok;		/* 4095 bytes: ".////...////file" */
	char *long_missing;	/* 4095 bytes, final component missing */
	char *long_bad;		/* 4096 bytes */
	char name255[NAME_MAX + 1];
	char missing255[NAME_MAX + 1];
	char name256[NAME_MAX + 2];
	int dirfd, pathfd, filefd, pathfilefd;
};

FIXTURE_VARIANT(corpus) {
	uid_t uid;
};

FIXTURE_VARIANT_ADD(corpus, root) {
	.uid = 0,
};

FIXTURE_VARIANT_ADD(corpus, nobody) {
	.uid = NOBODY,
};

static char *long_path(const char *name, size_t len)
{
	size_t n = strlen(name), slashes = len - 1 - n;
	char *p = malloc(len + 1);

	if (!p)
		ksft_exit_fail_msg("malloc\n");
	p[0] = '.';
	memset(p + 1, '/', slashes);
	memcpy(p + 1 + slashes, name, n + 1);
	return p;
}

FIXTURE_SETUP(corpus)
{
	int fd;

	self->dir = make_tmpdir();
	ASSERT_EQ(0, chdir(self->dir));
	write_file("file", "hello, dirsync\n", 0644);
	write_file("empty", "", 0600);
	write_file("exec", "#!/bin/sh\n", 04755);
	ASSERT_EQ(0, mkdir("dir", 0755));
	write_file("dir/inner", "inner\n", 0640);
	/* Another owner and group, and a file with three links. */
	write_file("owned", "owned\n", 0640);
	ASSERT_EQ(0, chown("owned", OTHER_UID, OTHER_GID));
	ASSERT_EQ(0, link("owned", "dir/owned2"));
	ASSERT_EQ(0, link("owned", "owned3"));
	ASSERT_EQ(0, mkdir("dir/sub", 0700));
	ASSERT_EQ(0, mkdir("secret", 0700));
	write_file("secret/file", "secret\n", 0600);
	ASSERT_EQ(0, mkfifo("fifo", 0620));
	ASSERT_EQ(0, symlink("file", "link"));
	ASSERT_EQ(0, symlink("dir", "dirlink"));
	ASSERT_EQ(0, symlink("nowhere", "dangling"));
	ASSERT_EQ(0, symlink("no-dir/x", "dangling2"));
	ASSERT_EQ(0, symlink("secret/file", "secretlink"));
	ASSERT_EQ(0, symlink("loop", "loop"));
	ASSERT_EQ(0, symlink("loopb", "loopa"));
	ASSERT_EQ(0, symlink("loopa", "loopb"));
	ASSERT_EQ(0, symlink("/dev/null", "abslink"));
	memset(self->name255, 'n', NAME_MAX);
	self->name255[NAME_MAX] = 0;
	memset(self->missing255, 'm', NAME_MAX);
	self->missing255[NAME_MAX] = 0;
	memset(self->name256, 'n', NAME_MAX + 1);
	self->name256[NAME_MAX + 1] = 0;
	write_file(self->name255, "255\n", 0644);
	self->long_ok = long_path("file", PATH_MAX - 1);
	self->long_missing = long_path("missing", PATH_MAX - 1);
	self->long_bad = long_path("file", PATH_MAX);
	ASSERT_EQ(PATH_MAX - 1, strlen(self->long_ok));
	ASSERT_EQ(PATH_MAX, strlen(self->long_bad));

	self->dirfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	self->pathfd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	self->filefd = open("file", O_RDONLY | O_CLOEXEC);
	self->pathfilefd = open("link", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	ASSERT_LE(0, self->dirfd);
	ASSERT_LE(0, self->pathfd);
	ASSERT_LE(0, self->filefd);
	ASSERT_LE(0, self->pathfilefd);
	/* A descriptor number that is certainly closed. */
	fd = dup(0);
	ASSERT_LE(0, fd);
	close(fd);
}

FIXTURE_TEARDOWN(corpus)
{
	if (chdir("/") == 0 && self->dir)
		rm_tree(self->dir);
}

struct corpus_run {
	struct _test_data_corpus *self;
	int checked;
};

static void corpus_check(struct __test_metadata *_metadata, void *arg)
{
	struct corpus_run *run = arg;
	struct _test_data_corpus *self = run->self;
	const char * const paths[] = {
		"file", "empty", "exec", "fifo", "dir", "dir/inner", "dir/sub",
		"dir/sub/x", "secret", "secret/file", "secret/missing",
		"secret/no-dir/x", "link", "link/", "dirlink", "dirlink/",
		"dirlink/inner", "dangling", "dangling/", "dangling2", "secretlink",
		"loop", "loop/", "loopa", "loopa/x", "abslink", ".", "..", "./",
		"../", "dir/.", "dir/..", "dir/../file", "dir//inner", "file/",
		"file/.", "file/x", "dir/", "dir/inner/", "missing", "missing/",
		"missing/.", "missing/..", "missing/x", "dir/missing",
		"dir/sub/../missing", "fifo/x", "owned", "dir/owned2", "owned3",
		"", "/", "//", "/..", "/.",
		"/proc", "/proc/version", "/proc/sys/kernel/ostype",
		"/proc/missing", "/sys", "/sys/kernel/dirsync/syscall_nr",
		"/sys/kernel/dirsync/missing", "/sys/missing/x", "/dev", "/dev/null",
		"/dev/null/", "/dev/null/x", "/dev/missing", "/tmp", "/tmp/",
		self->name255, self->missing255, self->name256, self->long_ok,
		self->long_missing, self->long_bad, NULL,
	};
	const int dfds[] = {
		AT_FDCWD, self->dirfd, self->pathfd, self->filefd, self->pathfilefd,
		9999, -5,
	};
	const unsigned int flags[] = {
		0, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH,
		AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, AT_NO_AUTOMOUNT,
		AT_STATX_FORCE_SYNC, AT_STATX_DONT_SYNC | AT_SYMLINK_NOFOLLOW,
		AT_STATX_SYNC_AS_STAT | AT_NO_AUTOMOUNT | AT_EMPTY_PATH,
	};
	const int npaths = ARRAY_SIZE(paths);
	char what[64];

	for (int p = 0; p < npaths; p++)
		for (size_t d = 0; d < ARRAY_SIZE(dfds); d++)
			for (size_t f = 0; f < ARRAY_SIZE(flags); f++) {
				snprintf(what, sizeof(what), "uid %u, path #%d", getuid(), p);
				EXPECT_TRUE(agrees(_metadata, what, dfds[d], paths[p], flags[f],
						   paths[p] && !strncmp(paths[p], "/proc", 5) ?
						   VOLATILE_NLINK : 0));
				run->checked++;
			}
	/* /proc/self is a new inode per lookup when followed. */
	for (size_t f = 0; f < ARRAY_SIZE(flags); f++) {
		EXPECT_TRUE(agrees(_metadata, "/proc/self", AT_FDCWD, "/proc/self",
				   flags[f], VOLATILE_INO));
		EXPECT_TRUE(agrees(_metadata, "/proc/self/", AT_FDCWD, "/proc/self/",
				   flags[f], VOLATILE_INO));
	}
	/* Spot checks that the oracle itself sees what we think it sees. */
	EXPECT_DS(0, 1, AT_FDCWD, "file", 0);
	expect_ids(_metadata, "owned", OTHER_UID, OTHER_GID, 3);
	expect_ids(_metadata, "dir", 0, 0, 3);
	EXPECT_DS(0, 0, AT_FDCWD, "missing", 0);
	EXPECT_DS(0, 0, AT_FDCWD, "dangling", 0);
	EXPECT_DS(0, 1, AT_FDCWD, "dangling", AT_SYMLINK_NOFOLLOW);
	EXPECT_DS(-ENOENT, 0, AT_FDCWD, "missing/x", 0);
	EXPECT_DS(-ENOTDIR, 0, AT_FDCWD, "file/x", 0);
	EXPECT_DS(-ELOOP, 0, AT_FDCWD, "loop", 0);
	EXPECT_DS(-ENAMETOOLONG, 0, AT_FDCWD, self->name256, 0);
	EXPECT_DS(-ENAMETOOLONG, 0, AT_FDCWD, self->long_bad, 0);
	EXPECT_DS(0, 1, AT_FDCWD, self->long_ok, 0);
	EXPECT_DS(0, 0, AT_FDCWD, self->long_missing, 0);
	EXPECT_DS(0, 1, AT_FDCWD, self->name255, 0);
	EXPECT_DS(0, 0, AT_FDCWD, self->missing255, 0);
	EXPECT_DS(-EBADF, 0, 9999, "file", 0);
	EXPECT_DS(-ENOTDIR, 0, self->filefd, "file", 0);
	EXPECT_DS(0, 1, self->filefd, "", AT_EMPTY_PATH);
	EXPECT_DS(-ENOENT, 0, AT_FDCWD, "", 0);
	if (getuid() == 0) {
		EXPECT_DS(0, 0, AT_FDCWD, "secret/missing", 0);
	} else {
		EXPECT_DS(-EACCES, 0, AT_FDCWD, "secret/missing", 0);
		EXPECT_DS(-EACCES, 0, AT_FDCWD, "secretlink", 0);
	}
}

TEST_F_TIMEOUT(corpus, against_statx, 600)
{
	struct corpus_run run = { .self = self };

	ASSERT_LT(0, ds_nr) TH_LOG("dirsync_stat is not announced in " DIRSYNC_SYSFS_DIR);
	run_as(_metadata, variant->uid, corpus_check, &run);
	if (variant->uid == 0)
		ksft_print_msg("corpus: %d combinations checked\n", run.checked);
}

/* Deleted working directory and deleted dfd: "." exists, names do not. */
TEST(deleted_cwd_and_dfd)
{
	const char * const paths[] = { ".", "..", "x", "x/y", "../x", "", NULL, "./", "/" };
	char *dir = make_tmpdir(), sub[PATH_MAX];
	int dfd;

	ASSERT_LT(0, ds_nr);
	snprintf(sub, sizeof(sub), "%s/gone", dir);
	ASSERT_EQ(0, mkdir(sub, 0755));
	dfd = open(sub, O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, chdir(sub));
	ASSERT_EQ(0, rmdir(sub));
	for (size_t p = 0; p < ARRAY_SIZE(paths); p++) {
		for (unsigned int f = 0; f <= AT_EMPTY_PATH; f += AT_EMPTY_PATH) {
			EXPECT_AGREE("deleted cwd", AT_FDCWD, paths[p], f);
			EXPECT_AGREE("deleted dfd", dfd, paths[p], f);
		}
	}
	EXPECT_DS(0, 1, AT_FDCWD, ".", 0);
	EXPECT_DS(0, 1, dfd, NULL, AT_EMPTY_PATH);
	EXPECT_DS(0, 0, dfd, "x", 0);
	EXPECT_DS(-ENOENT, 0, dfd, "x/y", 0);
	close(dfd);
	ASSERT_EQ(0, chdir("/"));
	rm_tree(dir);
	free(dir);
}

struct perm_dirs {
	const char *dir;
};

static void search_only_check(struct __test_metadata *_metadata, void *arg)
{
	/* 0111: search only.  A missing name is missing. */
	EXPECT_DS(0, 0, AT_FDCWD, "xonly/missing", 0);
	EXPECT_DS(0, 1, AT_FDCWD, "xonly/file", 0);
	EXPECT_DS(0, 1, AT_FDCWD, "xonly/sub", 0);
	EXPECT_DS(0, 0, AT_FDCWD, "xonly/sub/missing", 0);
	EXPECT_DS(-ENOENT, 0, AT_FDCWD, "xonly/no-dir/x", 0);
	EXPECT_AGREE("0111", AT_FDCWD, "xonly/missing", 0);
	EXPECT_AGREE("0111", AT_FDCWD, "xonly/file", 0);
	EXPECT_AGREE("0111", AT_FDCWD, "xonly", 0);
	/* No search permission: EACCES, never exists == 0. */
	EXPECT_DS(-EACCES, 0, AT_FDCWD, "none/missing", 0);
	EXPECT_DS(-EACCES, 0, AT_FDCWD, "none/file", 0);
	EXPECT_DS(-EACCES, 0, AT_FDCWD, "none/no-dir/x", 0);
	EXPECT_DS(-EACCES, 0, AT_FDCWD, "readonly/missing", 0);
	EXPECT_DS(-EACCES, 0, AT_FDCWD, "readonly/file", 0);
	EXPECT_DS(0, 1, AT_FDCWD, "none", 0);
	EXPECT_DS(0, 1, AT_FDCWD, "readonly", 0);
	EXPECT_AGREE("0000", AT_FDCWD, "none/missing", 0);
	EXPECT_AGREE("0444", AT_FDCWD, "readonly/missing", 0);
	EXPECT_AGREE("0444", AT_FDCWD, "readonly/missing", AT_SYMLINK_NOFOLLOW);
	/* The last prefix directory unsearchable, through a symlink too. */
	EXPECT_DS(-EACCES, 0, AT_FDCWD, "tonone/missing", 0);
	EXPECT_DS(-EACCES, 0, AT_FDCWD, "tonone/missing", AT_SYMLINK_NOFOLLOW);
}

TEST(search_only_and_unsearchable_dirs)
{
	char *dir = make_tmpdir();

	ASSERT_LT(0, ds_nr);
	ASSERT_EQ(0, chdir(dir));
	ASSERT_EQ(0, mkdir("xonly", 0755));
	write_file("xonly/file", "x\n", 0644);
	ASSERT_EQ(0, mkdir("xonly/sub", 0755));
	ASSERT_EQ(0, chmod("xonly", 0111));
	ASSERT_EQ(0, mkdir("none", 0755));
	write_file("none/file", "x\n", 0644);
	ASSERT_EQ(0, chmod("none", 0));
	ASSERT_EQ(0, mkdir("readonly", 0755));
	write_file("readonly/file", "x\n", 0644);
	ASSERT_EQ(0, chmod("readonly", 0444));
	ASSERT_EQ(0, symlink("none", "tonone"));
	run_as(_metadata, NOBODY, search_only_check, NULL);
	/* Root passes the permission checks: a missing name is missing. */
	EXPECT_DS(0, 0, AT_FDCWD, "none/missing", 0);
	EXPECT_DS(0, 1, AT_FDCWD, "none/file", 0);
	ASSERT_EQ(0, chdir("/"));
	rm_tree(dir);
	free(dir);
}

/* A bind mount over the final component, and missing names at mount roots. */
TEST(mount_points)
{
	char *dir = make_tmpdir();
	struct dirsync_info i;
	struct statx sx;

	ASSERT_LT(0, ds_nr);
	ASSERT_EQ(0, chdir(dir));
	ASSERT_EQ(0, mkdir("src", 0755));
	write_file("src/inside", "in\n", 0644);
	ASSERT_EQ(0, mkdir("mp", 0700));
	write_file("under", "hidden\n", 0600);
	write_file("over", "over the top\n", 0644);
	ASSERT_EQ(0, mkdir("tmpfs", 0755));
	ASSERT_EQ(0, symlink("mp", "mplink"));

	ASSERT_EQ(0, mount("src", "mp", NULL, MS_BIND, NULL)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, mount("over", "under", NULL, MS_BIND, NULL));
	ASSERT_EQ(0, mount("none", "tmpfs", "tmpfs", 0, "size=1m,mode=0750"));

	for (unsigned int f = 0; f <= AT_SYMLINK_NOFOLLOW; f += AT_SYMLINK_NOFOLLOW) {
		const char * const paths[] = {
			"mp", "mp/", "mp/inside", "mp/missing", "mp/..", "mp/.",
			"under", "under/", "tmpfs", "tmpfs/missing", "tmpfs/.",
			"tmpfs/..", "tmpfs/missing/x", "mplink", "mplink/missing",
		};

		for (size_t p = 0; p < ARRAY_SIZE(paths); p++) {
			EXPECT_AGREE("mounts", AT_FDCWD, paths[p], f | AT_NO_AUTOMOUNT);
			EXPECT_AGREE("mounts", AT_FDCWD, paths[p], f);
		}
	}
	/* The mounted objects are what is described, not what is under them. */
	ASSERT_EQ(0, sys_statx(AT_FDCWD, "src", 0, &sx));
	ASSERT_EQ(0, sys_ds(AT_FDCWD, "mp", &i, 0));
	EXPECT_EQ(sx.stx_ino, i.ino);
	EXPECT_EQ(0755, i.mode & 07777);
	ASSERT_EQ(0, sys_ds(AT_FDCWD, "under", &i, 0));
	EXPECT_EQ(13, i.size);
	ASSERT_EQ(0, sys_ds(AT_FDCWD, "tmpfs/missing", &i, 0));
	EXPECT_EQ(0, i.exists);
	ASSERT_EQ(0, sys_ds(AT_FDCWD, "tmpfs", &i, 0));
	EXPECT_EQ(0750, i.mode & 07777);
	EXPECT_NE(sx.stx_dev_minor, i.dev_minor);
	EXPECT_EQ(0, umount("tmpfs"));
	EXPECT_EQ(0, umount("under"));
	EXPECT_EQ(0, umount("mp"));
	EXPECT_DS(0, 1, AT_FDCWD, "mp", 0);
	EXPECT_DS(0, 0, AT_FDCWD, "mp/inside", 0);
	ASSERT_EQ(0, chdir("/"));
	rm_tree(dir);
	free(dir);
}

/* Sizes near LLONG_MAX and mtimes far from the 32-bit epoch range. */
TEST(extreme_size_and_times)
{
	const struct { long long sec; long nsec; } times[] = {
		{ 1LL << 33, 123456789 },		/* year 2242 */
		{ (1LL << 32) + 1, 999999999 },
		{ -(1LL << 31) - 1, 1 },		/* before 1901-12-13 */
		{ -(1LL << 35), 500000000 },
		{ 0, 0 },
		{ -1, 999999999 },
	};
	const long long sizes[] = { LLONG_MAX, LLONG_MAX - 1, 1LL << 40, 0 };
	const struct timespec link_ts[2] = {
		{ .tv_sec = 0, .tv_nsec = UTIME_OMIT },
		{ .tv_sec = -(1LL << 40), .tv_nsec = 7 },
	};
	char *dir = make_tmpdir();
	struct dirsync_info i;
	int fd;

	ASSERT_LT(0, ds_nr);
	ASSERT_EQ(0, chdir(dir));
	fd = open("sparse", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		ASSERT_EQ(0, ftruncate(fd, sizes[k]))
			TH_LOG("ftruncate %lld: %s", sizes[k], strerror(errno));
		ASSERT_EQ(0, sys_ds(AT_FDCWD, "sparse", &i, 0));
		EXPECT_EQ((unsigned long long)sizes[k], i.size);
		EXPECT_AGREE("size", AT_FDCWD, "sparse", 0);
		EXPECT_AGREE("size, fd", fd, NULL, AT_EMPTY_PATH);
	}
	for (size_t k = 0; k < ARRAY_SIZE(times); k++) {
		struct timespec ts[2] = {
			{ .tv_sec = 0, .tv_nsec = UTIME_OMIT },
			{ .tv_sec = times[k].sec, .tv_nsec = times[k].nsec },
		};

		ASSERT_EQ(0, utimensat(AT_FDCWD, "sparse", ts, 0));
		ASSERT_EQ(0, sys_ds(AT_FDCWD, "sparse", &i, 0));
		EXPECT_EQ(times[k].sec, i.mtime);
		EXPECT_EQ(times[k].nsec, i.mtime_nsec);
		EXPECT_AGREE("mtime", AT_FDCWD, "sparse", 0);
	}
	/* A symlink's own mtime, and its size (the target's length). */
	ASSERT_EQ(0, symlink("sparse", "link"));
	ASSERT_EQ(0, utimensat(AT_FDCWD, "link", link_ts, AT_SYMLINK_NOFOLLOW));
	ASSERT_EQ(0, sys_ds(AT_FDCWD, "link", &i, AT_SYMLINK_NOFOLLOW));
	EXPECT_EQ(-(1LL << 40), i.mtime);
	EXPECT_EQ(7, i.mtime_nsec);
	EXPECT_EQ(6, i.size);
	EXPECT_TRUE(S_ISLNK(i.mode));
	EXPECT_AGREE("symlink", AT_FDCWD, "link", AT_SYMLINK_NOFOLLOW);
	close(fd);
	ASSERT_EQ(0, chdir("/"));
	rm_tree(dir);
	free(dir);
}

/* AT_EMPTY_PATH with a NULL or empty path describes the dfd itself. */
TEST(empty_path)
{
	char *dir = make_tmpdir();
	int dfd, pathfd, filefd, opathfile, closed;
	struct dirsync_info i;
	struct statx sx;

	ASSERT_LT(0, ds_nr);
	ASSERT_EQ(0, chdir(dir));
	write_file("file", "0123456789", 0640);
	ASSERT_EQ(0, symlink("file", "link"));
	dfd = open(".", O_RDONLY | O_DIRECTORY);
	pathfd = open(".", O_PATH);
	filefd = open("file", O_RDONLY);
	opathfile = open("link", O_PATH | O_NOFOLLOW);
	closed = dup(0);
	ASSERT_LE(0, dfd);
	ASSERT_LE(0, pathfd);
	ASSERT_LE(0, filefd);
	ASSERT_LE(0, opathfile);
	ASSERT_EQ(0, close(closed));
	for (unsigned int f = 0; f < 4; f++) {
		unsigned int flags = AT_EMPTY_PATH |
				     (f & 1 ? AT_SYMLINK_NOFOLLOW : 0) |
				     (f & 2 ? AT_NO_AUTOMOUNT : 0);
		const int fds[] = { AT_FDCWD, dfd, pathfd, filefd, opathfile, closed };

		for (size_t k = 0; k < ARRAY_SIZE(fds); k++) {
			EXPECT_AGREE("NULL", fds[k], NULL, flags);
			EXPECT_AGREE("\"\"", fds[k], "", flags);
		}
	}
	ASSERT_EQ(0, sys_ds(filefd, NULL, &i, AT_EMPTY_PATH));
	EXPECT_EQ(1, i.exists);
	EXPECT_EQ(10, i.size);
	EXPECT_EQ(0640, i.mode & 07777);
	/* An O_PATH fd of a symlink describes the symlink. */
	ASSERT_EQ(0, sys_ds(opathfile, NULL, &i, AT_EMPTY_PATH));
	EXPECT_TRUE(S_ISLNK(i.mode));
	/*
	 * AT_FDCWD with "" is the working directory; with NULL it is EFAULT,
	 * as is NULL with AT_SYMLINK_NOFOLLOW (statx in 6.12).
	 */
	EXPECT_DS(-EFAULT, 0, AT_FDCWD, NULL, AT_EMPTY_PATH);
	EXPECT_DS(-EFAULT, 0, filefd, NULL, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	EXPECT_DS(0, 1, filefd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	ASSERT_EQ(0, sys_statx(AT_FDCWD, ".", 0, &sx));
	ASSERT_EQ(0, sys_ds(AT_FDCWD, "", &i, AT_EMPTY_PATH));
	EXPECT_EQ(sx.stx_ino, i.ino);
	EXPECT_DS(-EBADF, 0, closed, NULL, AT_EMPTY_PATH);
	EXPECT_DS(-EBADF, 0, -1, "", AT_EMPTY_PATH);
	EXPECT_DS(-EFAULT, 0, dfd, NULL, 0);
	EXPECT_DS(-ENOENT, 0, dfd, "", 0);
	/* A file deleted while open is still described. */
	ASSERT_EQ(0, unlink("file"));
	ASSERT_EQ(0, sys_ds(filefd, NULL, &i, AT_EMPTY_PATH));
	EXPECT_EQ(1, i.exists);
	EXPECT_AGREE("unlinked", filefd, "", AT_EMPTY_PATH);
	close(dfd);
	close(pathfd);
	close(filefd);
	close(opathfile);
	ASSERT_EQ(0, chdir("/"));
	rm_tree(dir);
	free(dir);
}

/* Every flag outside the documented set is EINVAL, as for statx. */
TEST(flags)
{
	struct dirsync_info i;

	ASSERT_LT(0, ds_nr);
	for (int bit = 0; bit < 32; bit++) {
		unsigned int f = 1U << bit;
		long r = sys_ds(AT_FDCWD, "/", &i, f);

		if (f & VALID_FLAGS) {
			EXPECT_EQ(0, r) TH_LOG("flag %#x: %s", f, strerror((int)-r));
		} else {
			EXPECT_EQ(-EINVAL, r) TH_LOG("flag %#x accepted", f);
			EXPECT_TRUE(all_bytes(&i, INFO_SIZE, 0xa5))
				TH_LOG("flag %#x: info written despite EINVAL", f);
		}
		EXPECT_AGREE("flag", AT_FDCWD, "/", f);
	}
	EXPECT_DS(0, 1, AT_FDCWD, "/", AT_NO_AUTOMOUNT);
	EXPECT_DS(0, 1, AT_FDCWD, "/", AT_STATX_SYNC_AS_STAT);
	EXPECT_DS(0, 1, AT_FDCWD, "/", AT_STATX_FORCE_SYNC);
	EXPECT_DS(0, 1, AT_FDCWD, "/", AT_STATX_DONT_SYNC);
	EXPECT_DS(-EINVAL, 0, AT_FDCWD, "/", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC);
	EXPECT_AGREE("both sync", AT_FDCWD, "/", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC);
	EXPECT_DS(-EINVAL, 0, AT_FDCWD, "/", AT_SYMLINK_FOLLOW);
	EXPECT_DS(-EINVAL, 0, AT_FDCWD, "/", AT_REMOVEDIR);
	EXPECT_DS(-EINVAL, 0, AT_FDCWD, "/", 0x80000000U);
	/* Flags are checked before the path is read. */
	EXPECT_DS(-EINVAL, 0, AT_FDCWD, NULL, 0x80000000U);
	/* The upper half of the register is not part of the argument. */
	EXPECT_EQ(0, sys_ds(AT_FDCWD, "/", &i, 0x100000000UL | AT_SYMLINK_NOFOLLOW));
}

static void *hole(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || munmap(p, len))
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	return p;
}

TEST(bad_pointers)
{
	void *kernel = (void *)0xffffffff81000000UL;
	long page = sysconf(_SC_PAGESIZE);
	char *two, *noaccess, *rdonly;
	struct dirsync_info *at_end;
	void *gone = hole(page);
	const char *name = "/dev/null";
	size_t len = strlen(name);

	ASSERT_LT(0, ds_nr);
	noaccess = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rdonly = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, noaccess);
	ASSERT_NE(MAP_FAILED, rdonly);
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, munmap(two + page, page));

	/* The path. */
	EXPECT_DS(-EFAULT, 0, AT_FDCWD, NULL, 0);
	EXPECT_DS(-EFAULT, 0, AT_FDCWD, gone, 0);
	EXPECT_DS(-EFAULT, 0, AT_FDCWD, noaccess, 0);
	EXPECT_DS(-EFAULT, 0, AT_FDCWD, kernel, 0);
	EXPECT_DS(-EFAULT, 0, AT_FDCWD, (void *)-1UL, 0);
	EXPECT_DS(-EFAULT, 0, AT_FDCWD, gone, AT_EMPTY_PATH);
	EXPECT_AGREE("unmapped path", AT_FDCWD, gone, 0);
	EXPECT_AGREE("kernel path", AT_FDCWD, kernel, AT_SYMLINK_NOFOLLOW);
	/* No NUL before the hole. */
	memcpy(two + page - len, name, len);
	EXPECT_DS(-EFAULT, 0, AT_FDCWD, two + page - len, 0);
	memset(two, 'a', page);
	EXPECT_DS(page == PATH_MAX ? -ENAMETOOLONG : -EFAULT, 0, AT_FDCWD, two, 0);
	/* The NUL as the very last mapped byte: a valid path. */
	memcpy(two + page - len - 1, name, len + 1);
	EXPECT_DS(0, 1, AT_FDCWD, two + page - len - 1, 0);

	/* The result buffer, for an existing and for a missing name. */
	EXPECT_EQ(-EFAULT, raw_ds(AT_FDCWD, "/dev/null", NULL, 0));
	EXPECT_EQ(-EFAULT, raw_ds(AT_FDCWD, "/dev/null", gone, 0));
	EXPECT_EQ(-EFAULT, raw_ds(AT_FDCWD, "/dev/null", noaccess, 0));
	EXPECT_EQ(-EFAULT, raw_ds(AT_FDCWD, "/dev/null", rdonly, 0));
	EXPECT_EQ(-EFAULT, raw_ds(AT_FDCWD, "/dev/null", kernel, 0));
	EXPECT_EQ(-EFAULT, raw_ds(AT_FDCWD, "/dev/no-such-file", NULL, 0));
	EXPECT_EQ(-EFAULT, raw_ds(AT_FDCWD, "/dev/no-such-file", kernel, 0));
	EXPECT_EQ(-EFAULT, raw_ds(AT_FDCWD, NULL, kernel, AT_EMPTY_PATH));
	EXPECT_EQ(-EFAULT, raw_ds(AT_FDCWD, "/dev/null", two + page - 40, 0));
	/* Exactly fitting before the hole is fine. */
	at_end = (void *)(two + page - INFO_SIZE);
	EXPECT_EQ(0, raw_ds(AT_FDCWD, "/dev/null", at_end, 0));
	EXPECT_EQ(1, at_end->exists);
	EXPECT_TRUE(S_ISCHR(at_end->mode));
	munmap(two, page);
	munmap(noaccess, page);
	munmap(rdonly, page);
}

/* The tests that run for seconds (the default timeout is 30 s). */
FIXTURE(slow) {
};

FIXTURE_SETUP(slow)
{
}

FIXTURE_TEARDOWN(slow)
{
}

/*
 * The prefix-rename race: "x" always exists in its directory, while a
 * directory of the prefix is renamed away and back.  A walk may fail at
 * the missing prefix (ENOENT), but the answer is never "x is missing".
 */
struct race {
	atomic_bool stop;
	const char *path;
	atomic_long exists1, enoent, wrong;
};

static void *race_checker(void *arg)
{
	struct race *r = arg;
	struct dirsync_info i;

	while (!atomic_load(&r->stop)) {
		long ret = sys_ds(AT_FDCWD, r->path, &i, 0);

		if (ret == 0 && i.exists == 1)
			atomic_fetch_add(&r->exists1, 1);
		else if (ret == -ENOENT)
			atomic_fetch_add(&r->enoent, 1);
		else if (atomic_fetch_add(&r->wrong, 1) < 5)
			fprintf(stderr, "# race: %s: %s%s\n", r->path,
				ret ? strerror((int)-ret) : "exists=",
				ret ? "" : (i.exists ? "1?" : "0"));
	}
	return NULL;
}

TEST_F_TIMEOUT(slow, prefix_rename_race, 300)
{
	const char * const paths[] = { "p/x", "p/q/x", "p/q/r/x" };
	char *dir = make_tmpdir();
	pthread_t th[3];
	struct race r;
	time_t end;
	long renames = 0;

	ASSERT_LT(0, ds_nr);
	/* The race needs the threads to run at the same time. */
	ASSERT_LE(2, sysconf(_SC_NPROCESSORS_ONLN)) TH_LOG("run it on an SMP machine");
	ASSERT_EQ(0, chdir(dir));
	ASSERT_EQ(0, mkdir("p", 0755));
	ASSERT_EQ(0, mkdir("p/q", 0755));
	ASSERT_EQ(0, mkdir("p/q/r", 0755));
	write_file("p/x", "x\n", 0644);
	write_file("p/q/x", "x\n", 0644);
	write_file("p/q/r/x", "x\n", 0644);
	for (size_t k = 0; k < ARRAY_SIZE(paths); k++) {
		memset(&r, 0, sizeof(r));
		r.path = paths[k];
		for (int t = 0; t < 3; t++)
			ASSERT_EQ(0, pthread_create(&th[t], NULL, race_checker, &r));
		end = time(NULL) + 4;
		while (time(NULL) < end) {
			const char *a = k == 2 ? "p/q" : "p", *b = k == 2 ? "p/Q" : "P";

			ASSERT_EQ(0, rename(a, b));
			ASSERT_EQ(0, rename(b, a));
			renames++;
		}
		atomic_store(&r.stop, true);
		for (int t = 0; t < 3; t++)
			pthread_join(th[t], NULL);
		ksft_print_msg("race %s: %ld exists=1, %ld ENOENT, %ld wrong (%ld renames)\n",
			       r.path, atomic_load(&r.exists1), atomic_load(&r.enoent),
			       atomic_load(&r.wrong), renames);
		EXPECT_EQ(0, atomic_load(&r.wrong));
		/* The race window was hit both ways. */
		EXPECT_LT(0, atomic_load(&r.exists1));
		EXPECT_LT(0, atomic_load(&r.enoent));
	}
	ASSERT_EQ(0, chdir("/"));
	rm_tree(dir);
	free(dir);
}

/*
 * Missing names looked up by several unprivileged processes in a 0555
 * directory while root processes create, delete and list entries there.
 * Every answer must be right; the throughput (compared with statx under
 * the same load) is printed, not asserted.
 */
#define HAMMER_SECONDS	3
#define HAMMER_READERS	3

static long hammer_reader(int use_statx, int id)
{
	char name[64];
	struct dirsync_info i;
	struct statx sx;
	time_t end = time(NULL) + HAMMER_SECONDS;
	long calls = 0;

	while (time(NULL) < end) {
		for (int k = 0; k < 64; k++, calls++) {
			snprintf(name, sizeof(name), "ro/missing-%d-%d", id, k);
			if (use_statx) {
				if (sys_statx(AT_FDCWD, name, 0, &sx) != -ENOENT)
					return -1;
			} else if (sys_ds(AT_FDCWD, name, &i, 0) != 0 ||
				   !all_bytes(&i, INFO_SIZE, 0)) {
				return -1;
			}
			if (k % 16 == 0 && (use_statx ?
					    sys_statx(AT_FDCWD, "ro/always", 0, &sx) != 0 :
					    sys_ds(AT_FDCWD, "ro/always", &i, 0) != 0 ||
					    i.exists != 1))
				return -1;
		}
	}
	return calls;
}

static void hammer_writer(int id, time_t end)
{
	char name[64];
	int n = 0;

	while (time(NULL) < end) {
		DIR *d;

		snprintf(name, sizeof(name), "ro/tmp-%d-%d", id, n++ % 32);
		if (id % 2) {
			int fd = open(name, O_CREAT | O_WRONLY, 0644);

			if (fd >= 0)
				close(fd);
			unlink(name);
		} else {
			d = opendir("ro");
			while (d && readdir(d))
				;
			if (d)
				closedir(d);
		}
	}
}

static void hammer_round(struct __test_metadata *_metadata, int use_statx, long *total)
{
	int pipes[HAMMER_READERS][2], status;
	pid_t pids[HAMMER_READERS + 2];
	time_t end = time(NULL) + HAMMER_SECONDS + 1;

	*total = 0;
	for (int w = 0; w < 2; w++) {
		pids[HAMMER_READERS + w] = fork();
		ASSERT_LE(0, pids[HAMMER_READERS + w]);
		if (pids[HAMMER_READERS + w] == 0) {
			hammer_writer(w, end);
			_exit(0);
		}
	}
	for (int r = 0; r < HAMMER_READERS; r++) {
		ASSERT_EQ(0, pipe(pipes[r]));
		pids[r] = fork();
		ASSERT_LE(0, pids[r]);
		if (pids[r] == 0) {
			long calls = -2;

			if (become(NOBODY))
				calls = hammer_reader(use_statx, r);
			_exit(write(pipes[r][1], &calls, sizeof(calls)) == sizeof(calls) ? 0 : 1);
		}
		close(pipes[r][1]);
	}
	for (int r = 0; r < HAMMER_READERS; r++) {
		long calls = -3;

		EXPECT_EQ(sizeof(calls), read(pipes[r][0], &calls, sizeof(calls)));
		close(pipes[r][0]);
		EXPECT_LT(0, calls) TH_LOG("%s reader %d: a wrong answer (%ld)",
					   use_statx ? "statx" : "dirsync_stat", r, calls);
		if (calls > 0)
			*total += calls;
	}
	for (int p = 0; p < HAMMER_READERS + 2; p++) {
		EXPECT_EQ(pids[p], waitpid(pids[p], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

TEST_F_TIMEOUT(slow, missing_names_under_load, 300)
{
	char *dir = make_tmpdir();
	long ds_calls, sx_calls;

	ASSERT_LT(0, ds_nr);
	ASSERT_EQ(0, chdir(dir));
	ASSERT_EQ(0, mkdir("ro", 0555));
	write_file("ro/always", "a\n", 0644);
	hammer_round(_metadata, 0, &ds_calls);
	hammer_round(_metadata, 1, &sx_calls);
	ksft_print_msg("missing names, %d readers, %d s: dirsync_stat %ld/s, statx %ld/s (%.2f)\n",
		       HAMMER_READERS, HAMMER_SECONDS, ds_calls / HAMMER_SECONDS,
		       sx_calls / HAMMER_SECONDS,
		       sx_calls ? (double)ds_calls / sx_calls : 0.0);
	ASSERT_EQ(0, chdir("/"));
	rm_tree(dir);
	free(dir);
}

/*
 * The randomized loop: random paths, dfds and flags over a small tree.
 * Threads mutate the "v" subtree meanwhile; answers about the stable "s"
 * subtree are checked against statx field by field, the others for being
 * well formed (a documented errno, or a complete answer).
 */
#define RANDOM_CALLS	100000

struct mutator {
	atomic_bool stop;
	unsigned int seed;
};

static const char *const volatile_names[] = { "v/a", "v/b", "v/d", "v/d/e", "v/l" };

static void *mutate(void *arg)
{
	struct mutator *m = arg;
	unsigned int seed = m->seed;

	while (!atomic_load(&m->stop)) {
		const char *n = volatile_names[rand_r(&seed) % 5];
		const char *o = volatile_names[rand_r(&seed) % 5];
		int fd;

		switch (rand_r(&seed) % 6) {
		case 0:
			fd = open(n, O_CREAT | O_WRONLY, 0644);
			if (fd >= 0)
				close(fd);
			break;
		case 1:
			unlink(n);
			break;
		case 2:
			mkdir(n, 0755);
			break;
		case 3:
			rmdir(n);
			break;
		case 4:
			rename(n, o);
			break;
		default:
			symlink(o + 2, n);
			break;
		}
	}
	return NULL;
}

static bool well_formed(long ret, const struct dirsync_info *i)
{
	switch (ret) {
	case 0:
		if (i->exists == 0)
			return all_bytes(i, INFO_SIZE, 0);
		return i->exists == 1 && (i->mask & ALL_BITS) == i->mask &&
		       (i->mask & (DIRSYNC_INFO_TYPE | DIRSYNC_INFO_INO | DIRSYNC_INFO_DEV)) ==
		       (DIRSYNC_INFO_TYPE | DIRSYNC_INFO_INO | DIRSYNC_INFO_DEV) &&
		       !i->__spare0 && all_bytes(i->__spare, sizeof(i->__spare), 0);
	case -ENOENT: case -ENOTDIR: case -ELOOP: case -EBADF: case -EINVAL:
	case -ENAMETOOLONG:
		return true;
	default:
		return false;
	}
}

TEST_F_TIMEOUT(slow, randomized, 900)
{
	const char * const comps[] = {
		"s", "s/f", "s/d", "s/d/g", "s/l", "s/dl", "s/dangle", "s/loop",
		"v/a", "v/b", "v/d", "v/d/e", "v/l", "missing", ".", "..", "",
		"s/f/", "s/d/", "s/d/..", "s/missing", "s/d/missing", "v", "/",
	};
	const unsigned int flagset[] = {
		0, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, AT_NO_AUTOMOUNT,
		AT_STATX_DONT_SYNC, AT_STATX_FORCE_SYNC | AT_SYMLINK_NOFOLLOW,
		AT_REMOVEDIR, 0x80,
	};
	const int ncomps = ARRAY_SIZE(comps);
	struct mutator m[2];
	pthread_t th[2];
	char *dir = make_tmpdir();
	unsigned int seed = (unsigned int)time(NULL);
	long stable = 0, other = 0;
	int dfds[6];
	char path[256];

	ASSERT_LT(0, ds_nr);
	ASSERT_EQ(0, chdir(dir));
	ASSERT_EQ(0, mkdir("s", 0755));
	ASSERT_EQ(0, mkdir("s/d", 0755));
	ASSERT_EQ(0, mkdir("v", 0755));
	write_file("s/f", "f\n", 0644);
	write_file("s/d/g", "gg\n", 0600);
	ASSERT_EQ(0, symlink("f", "s/l"));
	ASSERT_EQ(0, symlink("d", "s/dl"));
	ASSERT_EQ(0, symlink("nowhere", "s/dangle"));
	ASSERT_EQ(0, symlink("loop", "s/loop"));
	dfds[0] = AT_FDCWD;
	dfds[1] = open(".", O_RDONLY | O_DIRECTORY);
	dfds[2] = open("s", O_PATH | O_DIRECTORY);
	dfds[3] = open("s/f", O_RDONLY);
	dfds[4] = open("v", O_RDONLY | O_DIRECTORY);
	dfds[5] = 777;
	for (int k = 1; k < 5; k++)
		ASSERT_LE(0, dfds[k]);
	ksft_print_msg("randomized: seed %u\n", seed);
	for (int t = 0; t < 2; t++) {
		m[t].seed = seed + t + 1;
		atomic_init(&m[t].stop, false);
		ASSERT_EQ(0, pthread_create(&th[t], NULL, mutate, &m[t]));
	}
	for (long n = 0; n < RANDOM_CALLS; n++) {
		int dfd = dfds[rand_r(&seed) % 6];
		unsigned int flags = flagset[rand_r(&seed) % 8];
		const char *a = comps[rand_r(&seed) % ncomps];
		bool is_stable;
		struct dirsync_info i;
		long ret;

		/* One or two components, or an absolute path into the tree. */
		switch (rand_r(&seed) % 4) {
		case 0:
			snprintf(path, sizeof(path), "%s", a);
			break;
		case 1:
			snprintf(path, sizeof(path), "%s/%s", a, comps[rand_r(&seed) % ncomps]);
			break;
		case 2:
			snprintf(path, sizeof(path), "%s/%s", dir, a);
			break;
		default:
			snprintf(path, sizeof(path), "../%s/%s", dir + 5, a);
			break;
		}
		/*
		 * Stable: nothing under v/ is named, directly or through the
		 * dfd, and ".." from the dfd stays out of v/.
		 */
		is_stable = !strstr(path, "v/") && strcmp(path, "v") &&
			    strncmp(path, "v", 1) && !strstr(path, "/v") &&
			    dfd != dfds[4];
		if (is_stable) {
			EXPECT_TRUE(agrees(_metadata, "random", dfd, path, flags, 0))
				TH_LOG("call %ld", n);
			stable++;
		} else {
			ret = sys_ds(dfd, path, &i, flags);
			EXPECT_TRUE(well_formed(ret, &i))
				TH_LOG("call %ld: dfd %d path %s flags %#x: %ld exists %u",
				       n, dfd, path, flags, ret, i.exists);
			other++;
		}
		if (_metadata->exit_code)
			break;
	}
	for (int t = 0; t < 2; t++) {
		atomic_store(&m[t].stop, true);
		pthread_join(th[t], NULL);
	}
	ksft_print_msg("randomized: %ld calls checked against statx, %ld under mutation\n",
		       stable, other);
	EXPECT_EQ(RANDOM_CALLS, stable + other);
	EXPECT_LT(RANDOM_CALLS / 4, stable);
	for (int k = 1; k < 5; k++)
		close(dfds[k]);
	ASSERT_EQ(0, chdir("/"));
	rm_tree(dir);
	free(dir);
}

TEST_HARNESS_MAIN

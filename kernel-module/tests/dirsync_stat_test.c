// SPDX-License-Identifier: GPL-2.0
/*
 * In-VM tests of dirsync_stat(2).  Run only inside the QEMU guest booted by
 * qemu/run-tests.sh: on other kernels the syscall number may be another
 * system call, so the program refuses to run unless /sys/kernel/dirsync
 * announces the call (and then uses the number found there).
 *
 * Output protocol: "PASS <name>" or "FAIL <name>: <reason>" per test;
 * exit status 1 if anything failed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "dirsync_test.h"

#ifndef AT_STATX_FORCE_SYNC
#define AT_STATX_FORCE_SYNC 0x2000
#endif

/* A kernel text address on x86-64: never accessible from userspace. */
#define KERNEL_ADDR ((void *)0xffffffff81000000UL)

static long nr;
static int failures, passes;
static char base[PATH_MAX];
static long page;

/* Current test: name and whether it has failed already. */
static const char *cur;
static int cur_failed;

static void begin(const char *name)
{
	cur = name;
	cur_failed = 0;
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	if (cur_failed)
		return;
	cur_failed = 1;
	printf("FAIL %s: ", cur);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void end(void)
{
	if (cur_failed) {
		failures++;
	} else {
		passes++;
		printf("PASS %s\n", cur);
	}
	fflush(stdout);
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

static void die(const char *what)
{
	printf("FAIL setup: %s: %s\n", what, strerror(errno));
	exit(1);
}

static const char *P(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int i;
	char *b = bufs[i++ % 4];

	snprintf(b, PATH_MAX, "%s/%s", base, rel);
	return b;
}

static long ds(int dfd, const void *path, void *info, unsigned long flags)
{
	return dirsync_stat_raw(nr, dfd, path, info, flags);
}

static const char *errname(long ret)
{
	static char bufs[4][64];
	static int n;
	char *buf = bufs[n++ % 4];

	if (ret >= 0) {
		snprintf(buf, sizeof(bufs[0]), "%ld", ret);
		return buf;
	}
	snprintf(buf, sizeof(bufs[0]), "-%s", strerrorname_np((int)-ret) ?: "?");
	return buf;
}

static void expect_err(int dfd, const void *path, void *info,
		       unsigned long flags, long want)
{
	long ret = ds(dfd, path, info, flags);

	CHECK(ret == want, "got %s, want %s", errname(ret), errname(want));
}

static int all_bytes(const void *p, size_t n, unsigned char v)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i] != v)
			return 0;
	return 1;
}

static int tail_zero(const struct dirsync_info *i)
{
	return i->__pad0 == 0 && all_bytes(i->__reserved, sizeof(i->__reserved), 0);
}

/* Calls dirsync_stat with the buffer prefilled with 0xAA; expects 0. */
static int get(int dfd, const char *path, unsigned long flags,
	       struct dirsync_info *info)
{
	long ret;

	memset(info, 0xAA, sizeof(*info));
	ret = ds(dfd, path, info, flags);
	if (ret != 0) {
		fail("dirsync_stat(%s) = %s", path, errname(ret));
		return -1;
	}
	if (!tail_zero(info))
		fail("padding/reserved bytes not zero for %s", path);
	return 0;
}

/* Compares an answer with statx() on the same object. */
static void same_as_statx(int dfd, const char *path, unsigned long flags,
			  const struct dirsync_info *i)
{
	struct statx sx;
	int sflags = flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH);

	if (statx(dfd, path, sflags, STATX_BASIC_STATS, &sx)) {
		fail("statx(%s): %s", path, strerror(errno));
		return;
	}
	CHECK(i->exists == 1, "exists = %u", i->exists);
	CHECK(i->mode == sx.stx_mode, "mode %o != statx %o", i->mode, sx.stx_mode);
	CHECK(i->size == sx.stx_size, "size %llu != statx %llu",
	      (unsigned long long)i->size, (unsigned long long)sx.stx_size);
	CHECK(i->mtime == sx.stx_mtime.tv_sec, "mtime %lld != statx %lld",
	      (long long)i->mtime, (long long)sx.stx_mtime.tv_sec);
	CHECK(i->mtime_nsec == sx.stx_mtime.tv_nsec, "mtime_nsec %u != statx %u",
	      i->mtime_nsec, sx.stx_mtime.tv_nsec);
	CHECK(i->ino == sx.stx_ino, "ino %llu != statx %llu",
	      (unsigned long long)i->ino, (unsigned long long)sx.stx_ino);
	CHECK(i->dev_major == sx.stx_dev_major && i->dev_minor == sx.stx_dev_minor,
	      "dev %u:%u != statx %u:%u", i->dev_major, i->dev_minor,
	      sx.stx_dev_major, sx.stx_dev_minor);
}

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd))
		die(path);
}

static void setup(void)
{
	struct timespec ts[2] = { { 1000000000, 111111111 }, { 1234567890, 123456789 } };

	snprintf(base, sizeof(base), "/tmp/dirsync-test.XXXXXX");
	if (!mkdtemp(base))
		die("mkdtemp");
	if (chmod(base, 0755))
		die("chmod base");
	write_file(P("file"), "hello, dirsync\n", 15);
	if (utimensat(AT_FDCWD, P("file"), ts, 0))
		die("utimensat");
	if (mkdir(P("dir"), 0755) || mkdir(P("dir/sub"), 0700))
		die("mkdir");
	write_file(P("dir/inner"), "x", 1);
	if (symlink("file", P("link")) || symlink("missing-target", P("dangling")) ||
	    symlink("loop2", P("loop1")) || symlink("loop1", P("loop2")) ||
	    symlink("dir", P("dirlink")))
		die("symlink");
	if (mkdir(P("private"), 0700))
		die("mkdir private");
	write_file(P("private/secret"), "s", 1);
}

static void test_discovery(void)
{
	struct stat st;
	const char *names[] = { "syscall_nr", "abi_version" };
	char path[256];

	begin("discovery_sysfs_files");
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", DIRSYNC_SYSFS_DIR, names[i]);
		if (stat(path, &st)) {
			fail("%s: %s", path, strerror(errno));
			continue;
		}
		CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0444,
		      "%s mode %o, want regular 0444", path, st.st_mode);
	}
	CHECK(dirsync_read_sysfs("syscall_nr") == 463, "syscall_nr = %ld, want 463",
	      dirsync_read_sysfs("syscall_nr"));
	CHECK(dirsync_read_sysfs("abi_version") == DIRSYNC_ABI_VERSION,
	      "abi_version = %ld", dirsync_read_sysfs("abi_version"));
#ifdef SYS_dirsync_stat
	CHECK(nr == SYS_dirsync_stat, "sysfs number %ld != SYS_dirsync_stat", nr);
#endif
	end();

	begin("discovery_number_works");
	{
		struct dirsync_info i;
		/* The announced number answers as dirsync_stat, not ENOSYS. */
		if (!get(AT_FDCWD, P("file"), 0, &i))
			CHECK(i.exists == 1 && i.size == 15, "exists %u size %llu",
			      i.exists, (unsigned long long)i.size);
		/* Its neighbours are something else. */
		CHECK(dirsync_stat_raw(nr + 1, 0, 0, 0, 0) == -ENOSYS,
		      "syscall %ld is not ENOSYS", nr + 1);
	}
	end();

	begin("discovery_unprivileged_read");
	{
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			if (setgid(65534) || setuid(65534))
				_exit(2);
			_exit(dirsync_discover() == nr ? 0 : 1);
		}
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "uid 65534 could not discover the call (status %d)", status);
	}
	end();
}

static void test_regular_file(void)
{
	struct dirsync_info i;
	struct stat st;

	begin("regular_file_matches_statx");
	if (!get(AT_FDCWD, P("file"), 0, &i)) {
		same_as_statx(AT_FDCWD, P("file"), 0, &i);
		CHECK(S_ISREG(i.mode) && (i.mode & 07777) == 0644, "mode %o", i.mode);
		CHECK(i.size == 15, "size %llu", (unsigned long long)i.size);
		CHECK(i.mtime == 1234567890 && i.mtime_nsec == 123456789,
		      "mtime %lld.%09u, want 1234567890.123456789",
		      (long long)i.mtime, i.mtime_nsec);
	}
	end();

	begin("large_sparse_file_size");
	{
		int fd = open(P("big"), O_WRONLY | O_CREAT, 0600);

		if (fd < 0 || ftruncate(fd, 5LL << 30) || close(fd))
			die("big file");
		if (!get(AT_FDCWD, P("big"), 0, &i)) {
			same_as_statx(AT_FDCWD, P("big"), 0, &i);
			CHECK(i.size == 5ULL << 30, "size %llu", (unsigned long long)i.size);
		}
		unlink(P("big"));
	}
	end();

	begin("mtime_follows_modification");
	{
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { -5, 999999999 } };

		if (utimensat(AT_FDCWD, P("dir/inner"), ts, 0))
			die("utimensat");
		if (!get(AT_FDCWD, P("dir/inner"), 0, &i)) {
			CHECK(i.mtime == -5 && i.mtime_nsec == 999999999,
			      "mtime %lld.%09u, want -5.999999999",
			      (long long)i.mtime, i.mtime_nsec);
			same_as_statx(AT_FDCWD, P("dir/inner"), 0, &i);
		}
		if (stat(P("dir/inner"), &st) == 0)
			CHECK(st.st_mtim.tv_sec == -5, "stat disagrees");
	}
	end();
}

static void test_directory(void)
{
	struct dirsync_info i;

	begin("directory");
	if (!get(AT_FDCWD, P("dir"), 0, &i)) {
		same_as_statx(AT_FDCWD, P("dir"), 0, &i);
		CHECK(S_ISDIR(i.mode), "not a directory: mode %o", i.mode);
	}
	if (!get(AT_FDCWD, P("dir/sub"), 0, &i))
		CHECK(S_ISDIR(i.mode) && (i.mode & 07777) == 0700, "mode %o", i.mode);
	if (!get(AT_FDCWD, "/", 0, &i))
		same_as_statx(AT_FDCWD, "/", 0, &i);
	if (!get(AT_FDCWD, P("dir/."), 0, &i))
		same_as_statx(AT_FDCWD, P("dir"), 0, &i);
	if (!get(AT_FDCWD, P("dir/sub/.."), 0, &i))
		same_as_statx(AT_FDCWD, P("dir"), 0, &i);
	if (!get(AT_FDCWD, P("dir/"), 0, &i))
		same_as_statx(AT_FDCWD, P("dir"), 0, &i);
	end();
}

static void test_symlinks(void)
{
	struct dirsync_info i;

	begin("symlink_followed");
	if (!get(AT_FDCWD, P("link"), 0, &i)) {
		same_as_statx(AT_FDCWD, P("file"), 0, &i);
		CHECK(S_ISREG(i.mode), "mode %o", i.mode);
	}
	if (!get(AT_FDCWD, P("dirlink/inner"), AT_SYMLINK_NOFOLLOW, &i))
		same_as_statx(AT_FDCWD, P("dir/inner"), 0, &i);
	end();

	begin("symlink_nofollow");
	if (!get(AT_FDCWD, P("link"), AT_SYMLINK_NOFOLLOW, &i)) {
		same_as_statx(AT_FDCWD, P("link"), AT_SYMLINK_NOFOLLOW, &i);
		CHECK(S_ISLNK(i.mode), "mode %o", i.mode);
		CHECK(i.size == 4, "size %llu, want strlen(\"file\")",
		      (unsigned long long)i.size);
	}
	end();

	begin("dangling_symlink");
	if (!get(AT_FDCWD, P("dangling"), 0, &i))
		CHECK(i.exists == 0 && all_bytes(&i, sizeof(i), 0),
		      "followed dangling link: exists %u", i.exists);
	if (!get(AT_FDCWD, P("dangling"), AT_SYMLINK_NOFOLLOW, &i)) {
		same_as_statx(AT_FDCWD, P("dangling"), AT_SYMLINK_NOFOLLOW, &i);
		CHECK(S_ISLNK(i.mode), "mode %o", i.mode);
	}
	end();

	begin("eloop");
	{
		struct dirsync_info j;

		expect_err(AT_FDCWD, P("loop1"), &j, 0, -ELOOP);
		expect_err(AT_FDCWD, P("loop1/x"), &j, AT_SYMLINK_NOFOLLOW, -ELOOP);
		/* The loop link itself can be described. */
		if (!get(AT_FDCWD, P("loop1"), AT_SYMLINK_NOFOLLOW, &i))
			CHECK(S_ISLNK(i.mode), "mode %o", i.mode);
	}
	end();
}

static void test_missing(void)
{
	struct dirsync_info i;

	begin("missing_file_exists_0");
	if (!get(AT_FDCWD, P("no-such-file"), 0, &i))
		CHECK(all_bytes(&i, sizeof(i), 0), "not all zero: exists %u", i.exists);
	if (!get(AT_FDCWD, P("no-such-file"), AT_SYMLINK_NOFOLLOW, &i))
		CHECK(all_bytes(&i, sizeof(i), 0), "nofollow: not all zero");
	if (!get(AT_FDCWD, P("dir/no-such-file/"), 0, &i))
		CHECK(all_bytes(&i, sizeof(i), 0), "trailing slash: not all zero");
	if (!get(AT_FDCWD, P("dirlink/no-such-file"), 0, &i))
		CHECK(all_bytes(&i, sizeof(i), 0), "via dir symlink: not all zero");
	end();

	begin("missing_prefix_dir_enoent");
	expect_err(AT_FDCWD, P("no-such-dir/file"), &i, 0, -ENOENT);
	expect_err(AT_FDCWD, P("no-such-dir/a/b/c"), &i, AT_SYMLINK_NOFOLLOW, -ENOENT);
	expect_err(AT_FDCWD, P("dangling/file"), &i, 0, -ENOENT);
	expect_err(AT_FDCWD, P("no-such-dir/.."), &i, 0, -ENOENT);
	expect_err(AT_FDCWD, P("no-such-dir/."), &i, 0, -ENOENT);
	end();

	begin("empty_path_enoent");
	expect_err(AT_FDCWD, "", &i, 0, -ENOENT);
	end();

	begin("enotdir");
	expect_err(AT_FDCWD, P("file/x"), &i, 0, -ENOTDIR);
	expect_err(AT_FDCWD, P("file/"), &i, 0, -ENOTDIR);
	expect_err(AT_FDCWD, P("link/x"), &i, AT_SYMLINK_NOFOLLOW, -ENOTDIR);
	expect_err(AT_FDCWD, P("file/no/such"), &i, 0, -ENOTDIR);
	end();
}

/* A fresh page with no access, and an address inside no mapping. */
static void *unmapped_page(void)
{
	void *p = mmap(NULL, page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || munmap(p, page))
		die("mmap");
	return p;
}

static void test_efault(void)
{
	struct dirsync_info i;
	void *gone = unmapped_page();
	void *noaccess = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *rdonly = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (noaccess == MAP_FAILED || rdonly == MAP_FAILED)
		die("mmap");

	begin("efault_path");
	expect_err(AT_FDCWD, NULL, &i, 0, -EFAULT);
	expect_err(AT_FDCWD, gone, &i, 0, -EFAULT);
	expect_err(AT_FDCWD, noaccess, &i, 0, -EFAULT);
	expect_err(AT_FDCWD, KERNEL_ADDR, &i, 0, -EFAULT);
	expect_err(AT_FDCWD, (void *)-1UL, &i, 0, -EFAULT);
	expect_err(AT_FDCWD, NULL, &i, AT_EMPTY_PATH, -EFAULT);
	end();

	begin("efault_info");
	expect_err(AT_FDCWD, P("file"), NULL, 0, -EFAULT);
	expect_err(AT_FDCWD, P("file"), gone, 0, -EFAULT);
	expect_err(AT_FDCWD, P("file"), noaccess, 0, -EFAULT);
	expect_err(AT_FDCWD, P("file"), rdonly, 0, -EFAULT);
	expect_err(AT_FDCWD, P("file"), KERNEL_ADDR, 0, -EFAULT);
	/* Also for the "missing" answer, which is written too. */
	expect_err(AT_FDCWD, P("no-such-file"), NULL, 0, -EFAULT);
	expect_err(AT_FDCWD, P("no-such-file"), KERNEL_ADDR, 0, -EFAULT);
	/* Info struct straddling the end of a mapping. */
	{
		char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (two == MAP_FAILED || munmap(two + page, page))
			die("mmap");
		expect_err(AT_FDCWD, P("file"), two + page - 40, 0, -EFAULT);
		/* Exactly fitting before the hole is fine. */
		{
			long r = ds(AT_FDCWD, P("file"),
				    two + page - sizeof(struct dirsync_info), 0);
			struct dirsync_info *at_end =
				(void *)(two + page - sizeof(struct dirsync_info));

			CHECK(r == 0 && at_end->exists == 1 && at_end->size == 15,
			      "info ending at page end: %s", errname(r));
		}
		munmap(two, page);
	}
	end();

	begin("path_ends_at_unmapped_page");
	{
		char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		const char *name = P("file");
		size_t len = strlen(name);

		if (two == MAP_FAILED || munmap(two + page, page))
			die("mmap");
		/* No terminating NUL before the hole: EFAULT. */
		memcpy(two + page - len, name, len);
		expect_err(AT_FDCWD, two + page - len, &i, 0, -EFAULT);
		/* 2000 bytes without a NUL, then the hole. */
		memset(two + page - 2000, 'a', 2000);
		expect_err(AT_FDCWD, two + page - 2000, &i, 0, -EFAULT);
		/* A whole page: PATH_MAX bytes are read before the hole. */
		memset(two, 'a', page);
		expect_err(AT_FDCWD, two, &i, 0, page == PATH_MAX ? -ENAMETOOLONG : -EFAULT);
		/* NUL as the very last mapped byte: a valid path. */
		memcpy(two + page - len - 1, name, len + 1);
		if (!get(AT_FDCWD, two + page - len - 1, 0, &i))
			CHECK(i.exists == 1 && i.size == 15, "exists %u size %llu",
			      i.exists, (unsigned long long)i.size);
		munmap(two, page);
	}
	end();
	munmap(noaccess, page);
	munmap(rdonly, page);
}

static void test_nametoolong(void)
{
	struct dirsync_info i;
	char *buf = malloc(2 * PATH_MAX);
	char comp[NAME_MAX + 2];
	int fd;

	begin("enametoolong");
	/* A whole path of PATH_MAX bytes without its NUL. */
	memset(buf, 'a', PATH_MAX);
	buf[PATH_MAX] = 0;
	expect_err(AT_FDCWD, buf, &i, 0, -ENAMETOOLONG);
	/* Longer still. */
	memset(buf, '/', 2 * PATH_MAX - 1);
	buf[2 * PATH_MAX - 1] = 0;
	expect_err(AT_FDCWD, buf, &i, 0, -ENAMETOOLONG);
	/* One component of NAME_MAX + 1 bytes. */
	memset(comp, 'b', NAME_MAX + 1);
	comp[NAME_MAX + 1] = 0;
	snprintf(buf, PATH_MAX, "%s/%s", base, comp);
	expect_err(AT_FDCWD, buf, &i, 0, -ENAMETOOLONG);
	end();

	begin("long_paths_work");
	/* A component of exactly NAME_MAX bytes. */
	comp[NAME_MAX] = 0;
	snprintf(buf, PATH_MAX, "%s/%s", base, comp);
	write_file(buf, "1234", 4);
	if (!get(AT_FDCWD, buf, 0, &i))
		CHECK(i.exists == 1 && i.size == 4, "exists %u size %llu",
		      i.exists, (unsigned long long)i.size);
	unlink(buf);
	/* A path of PATH_MAX - 1 bytes (///.../file: extra slashes). */
	snprintf(buf, PATH_MAX, "%s/file", base);
	{
		size_t len = strlen(buf);
		size_t pad = PATH_MAX - 1 - len;

		memmove(buf + pad, buf, len + 1);
		memset(buf, '/', pad);
		if (strlen(buf) != PATH_MAX - 1)
			fail("length %zu", strlen(buf));
		else if (!get(AT_FDCWD, buf, 0, &i))
			CHECK(i.exists == 1 && i.size == 15, "exists %u", i.exists);
	}
	/* Deep directories: 40 levels of 90-byte names, relative to a dfd. */
	fd = open(base, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		die("open base");
	buf[0] = 0;
	for (int d = 0; d < 40; d++) {
		memset(comp, 'c' + d % 20, 90);
		comp[90] = 0;
		strcat(buf, d ? "/" : "");
		strcat(buf, comp);
		if (mkdirat(fd, buf, 0755) && errno != EEXIST)
			die("mkdirat deep");
	}
	strcat(buf, "/leaf");
	if (!get(fd, buf, 0, &i))
		CHECK(i.exists == 0, "leaf exists %u", i.exists);
	close(fd);
	end();
	free(buf);
}

static void test_eacces(void)
{
	begin("eacces_unprivileged");
	{
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			struct dirsync_info i;
			long r1, r2, r3, r4;

			if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
				_exit(100);
			r1 = ds(AT_FDCWD, P("private/secret"), &i, 0);
			/* A missing file in an unsearchable dir is EACCES, not "missing". */
			r2 = ds(AT_FDCWD, P("private/no-such-file"), &i, 0);
			r3 = ds(AT_FDCWD, P("private/no-dir/x"), &i, 0);
			/* The directory itself is visible. */
			r4 = ds(AT_FDCWD, P("private"), &i, 0);
			if (r1 != -EACCES)
				_exit(1);
			if (r2 != -EACCES)
				_exit(2);
			if (r3 != -EACCES)
				_exit(3);
			if (r4 != 0 || i.exists != 1)
				_exit(4);
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid)
			die("fork");
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child check %d failed (1: file, 2: missing file, 3: missing dir, 4: dir itself)",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	/* Root can read it. */
	{
		struct dirsync_info i;

		if (!get(AT_FDCWD, P("private/secret"), 0, &i))
			CHECK(i.exists == 1, "root: exists %u", i.exists);
	}
	end();
}

static void test_einval(void)
{
	struct dirsync_info i;
	const unsigned long bad[] = {
		AT_REMOVEDIR, AT_NO_AUTOMOUNT, AT_STATX_FORCE_SYNC, AT_SYMLINK_FOLLOW,
		1, 0x80000000UL, 0xffffffffUL, AT_SYMLINK_NOFOLLOW | 0x40000,
		AT_EMPTY_PATH | AT_REMOVEDIR,
	};

	begin("einval_unknown_flags");
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		memset(&i, 0xAA, sizeof(i));
		expect_err(AT_FDCWD, P("file"), &i, bad[k], -EINVAL);
		CHECK(all_bytes(&i, sizeof(i), 0xAA), "info written despite EINVAL");
	}
	/* Flags are checked before the path is read. */
	expect_err(AT_FDCWD, NULL, &i, 0x80000000UL, -EINVAL);
	/* Upper 32 bits of the register are ignored (unsigned int). */
	if (!get(AT_FDCWD, P("file"), 0x100000000UL | AT_SYMLINK_NOFOLLOW, &i))
		CHECK(i.exists == 1, "exists %u", i.exists);
	end();
}

static void test_dfd(void)
{
	struct dirsync_info i;
	int dfd = open(P("dir"), O_RDONLY | O_DIRECTORY);
	int pathfd = open(P("dir"), O_PATH | O_DIRECTORY);
	int filefd = open(P("file"), O_RDONLY);
	int closed = open(P("file"), O_RDONLY);

	if (dfd < 0 || pathfd < 0 || filefd < 0 || closed < 0 || close(closed))
		die("open");

	begin("dfd_relative");
	if (!get(dfd, "inner", 0, &i))
		same_as_statx(dfd, "inner", 0, &i);
	if (!get(pathfd, "inner", 0, &i))
		same_as_statx(AT_FDCWD, P("dir/inner"), 0, &i);
	if (!get(dfd, "../file", 0, &i))
		same_as_statx(AT_FDCWD, P("file"), 0, &i);
	if (!get(dfd, "sub/..", 0, &i))
		same_as_statx(AT_FDCWD, P("dir"), 0, &i);
	if (!get(dfd, "no-such-file", 0, &i))
		CHECK(all_bytes(&i, sizeof(i), 0), "missing: not all zero");
	expect_err(dfd, "no-such-dir/x", &i, 0, -ENOENT);
	/* An absolute path ignores dfd, even a bad one. */
	if (!get(-1, P("file"), 0, &i))
		same_as_statx(AT_FDCWD, P("file"), 0, &i);
	end();

	begin("dfd_errors");
	expect_err(-1, "file", &i, 0, -EBADF);
	expect_err(closed, "file", &i, 0, -EBADF);
	expect_err(1000000, "file", &i, 0, -EBADF);
	expect_err(filefd, "x", &i, 0, -ENOTDIR);
	/* The -ENOENT-path parent walk reports dfd errors the same way. */
	expect_err(-1, "no-such-file", &i, 0, -EBADF);
	end();

	begin("at_empty_path");
	if (!get(filefd, "", AT_EMPTY_PATH, &i))
		same_as_statx(AT_FDCWD, P("file"), 0, &i);
	if (!get(dfd, "", AT_EMPTY_PATH, &i))
		same_as_statx(AT_FDCWD, P("dir"), 0, &i);
	if (!get(pathfd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, &i))
		same_as_statx(AT_FDCWD, P("dir"), 0, &i);
	{
		int lfd = open(P("link"), O_PATH | O_NOFOLLOW);

		if (lfd < 0)
			die("open link O_PATH");
		if (!get(lfd, "", AT_EMPTY_PATH, &i))
			same_as_statx(AT_FDCWD, P("link"), AT_SYMLINK_NOFOLLOW, &i);
		close(lfd);
	}
	/* An unlinked but open file still exists for its fd. */
	{
		int ufd = open(P("gone"), O_RDWR | O_CREAT, 0600);

		if (ufd < 0 || write(ufd, "abc", 3) != 3 || unlink(P("gone")))
			die("unlinked file");
		if (!get(ufd, "", AT_EMPTY_PATH, &i))
			CHECK(i.exists == 1 && i.size == 3, "exists %u size %llu",
			      i.exists, (unsigned long long)i.size);
		close(ufd);
	}
	if (chdir(P("dir")))
		die("chdir");
	if (!get(AT_FDCWD, "", AT_EMPTY_PATH, &i))
		same_as_statx(AT_FDCWD, P("dir"), 0, &i);
	if (!get(AT_FDCWD, "inner", 0, &i))
		same_as_statx(AT_FDCWD, P("dir/inner"), 0, &i);
	if (chdir("/"))
		die("chdir /");
	expect_err(filefd, "", &i, 0, -ENOENT);
	expect_err(-1, "", &i, AT_EMPTY_PATH, -EBADF);
	expect_err(closed, "", &i, AT_EMPTY_PATH, -EBADF);
	end();

	close(dfd);
	close(pathfd);
	close(filefd);
}

static void test_padding(void)
{
	struct {
		struct dirsync_info info;
		unsigned char guard[64];
	} buf;
	const char *paths[] = { "file", "dir", "link", "no-such-file", "dangling" };

	begin("padding_and_reserved_zero");
	for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
		memset(&buf, 0xAA, sizeof(buf));
		if (ds(AT_FDCWD, P(paths[k]), &buf.info, 0) != 0) {
			fail("%s failed", paths[k]);
			continue;
		}
		CHECK(tail_zero(&buf.info), "%s: __pad0/__reserved not zero", paths[k]);
		CHECK(all_bytes(buf.guard, sizeof(buf.guard), 0xAA),
		      "%s: wrote past the 80-byte struct", paths[k]);
		CHECK(buf.info.exists <= 1, "%s: exists %u", paths[k], buf.info.exists);
	}
	CHECK(sizeof(struct dirsync_info) == 80, "sizeof %zu", sizeof(struct dirsync_info));
	end();
}

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_random(void)
{
	const long calls = 100000;
	char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *gone = unmapped_page();
	char *garbage = malloc(PATH_MAX + 16);
	int dfd = open(base, O_RDONLY | O_DIRECTORY);
	int filefd = open(P("file"), O_RDONLY);
	long ok = 0, errs[256] = { 0 };
	struct dirsync_info i;
	const char *names[] = {
		"file", "dir", "link", "dangling", "loop1", "dirlink/inner",
		"no-such", "no-such-dir/x", "file/x", "private/secret", "", ".",
		"..", "/", "dir/sub/../inner", "dir//inner/", "/proc/self/exe",
		"/sys/kernel/dirsync/syscall_nr", "/dev/null", "/proc/1/fd/0",
	};

	if (two == MAP_FAILED || munmap(two + page, page) || !garbage || dfd < 0 || filefd < 0)
		die("random setup");
	rng = (uint64_t)time(NULL) * 2654435761u | 1;
	printf("random: seed %llu\n", (unsigned long long)rng);

	begin("randomized_100000_calls");
	for (long n = 0; n < calls; n++) {
		uint64_t r = rnd();
		const void *path;
		void *info;
		unsigned long flags;
		int fd;
		long ret;

		switch (r % 8) {
		case 0:
			path = NULL;
			break;
		case 1:
			path = KERNEL_ADDR;
			break;
		case 2:
			path = gone;
			break;
		case 3: {
			size_t len = rnd() % (PATH_MAX + 8);

			for (size_t k = 0; k < len; k++)
				garbage[k] = "ab/.\x01\xff-"[rnd() % 7];
			garbage[len] = 0;
			path = garbage;
			break;
		}
		case 4: {
			/* A string running into the unmapped page. */
			size_t len = rnd() % 64;

			memset(two + page - len, 'z', len);
			if (len && rnd() % 2)
				two[page - 1] = 0;
			path = two + page - len;
			break;
		}
		default:
			path = names[rnd() % (sizeof(names) / sizeof(names[0]))];
		}
		switch ((r >> 8) % 6) {
		case 0:
			info = NULL;
			break;
		case 1:
			info = KERNEL_ADDR;
			break;
		case 2:
			info = two + page - (rnd() % 80);
			break;
		default:
			info = &i;
		}
		switch ((r >> 16) % 4) {
		case 0:
			flags = rnd();
			break;
		case 1:
			flags = AT_SYMLINK_NOFOLLOW;
			break;
		case 2:
			flags = AT_EMPTY_PATH | (rnd() % 2 ? AT_SYMLINK_NOFOLLOW : 0);
			break;
		default:
			flags = 0;
		}
		switch ((r >> 24) % 5) {
		case 0:
			fd = AT_FDCWD;
			break;
		case 1:
			fd = dfd;
			break;
		case 2:
			fd = filefd;
			break;
		case 3:
			fd = (int)(rnd() % 64) - 8;
			break;
		default:
			fd = (int)rnd();
		}
		if (info == &i)
			memset(&i, 0xAA, sizeof(i));
		ret = ds(fd, path, info, flags);
		if (ret == 0) {
			ok++;
			if (info == &i && (!tail_zero(&i) || i.exists > 1)) {
				fail("call %ld: bad info (exists %u)", n, i.exists);
				break;
			}
		} else if (ret < 0 && ret > -256) {
			errs[-ret]++;
			switch (-ret) {
			case EFAULT: case ENAMETOOLONG: case ENOENT: case ENOTDIR:
			case ELOOP: case EACCES: case EBADF: case EINVAL:
				break;
			default:
				fail("call %ld: unexpected %s", n, errname(ret));
			}
		} else {
			fail("call %ld: returned %ld", n, ret);
			break;
		}
	}
	printf("random: %ld calls, %ld ok, EFAULT %ld, ENOENT %ld, EINVAL %ld, EBADF %ld, ENOTDIR %ld, ENAMETOOLONG %ld, ELOOP %ld\n",
	       calls, ok, errs[EFAULT], errs[ENOENT], errs[EINVAL], errs[EBADF],
	       errs[ENOTDIR], errs[ENAMETOOLONG], errs[ELOOP]);
	CHECK(ok > 0 && errs[EFAULT] > 0 && errs[EINVAL] > 0,
	      "the random calls did not cover success, EFAULT and EINVAL");
	end();
	free(garbage);
	close(dfd);
	close(filefd);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	page = sysconf(_SC_PAGESIZE);
	nr = dirsync_discover();
	if (nr < 0) {
		printf("FAIL discovery: %s does not announce dirsync_stat ABI %d\n",
		       DIRSYNC_SYSFS_DIR, DIRSYNC_ABI_VERSION);
		return 1;
	}
	if (getuid() != 0) {
		printf("FAIL setup: must run as root in the test VM\n");
		return 1;
	}
	setup();
	test_discovery();
	test_regular_file();
	test_directory();
	test_symlinks();
	test_missing();
	test_efault();
	test_nametoolong();
	test_eacces();
	test_einval();
	test_dfd();
	test_padding();
	test_random();
	printf("dirsync_stat_test: %d passed, %d failed\n", passes, failures);
	return failures ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of dirsync_readdir(2), with getdents64(2) + fstatat(2) as the
 * oracle.
 *
 * The syscall number is taken from /sys/kernel/dirsync/readdir_syscall_nr
 * (never guessed: on a kernel without the call the number may belong to
 * another system call, 464 is getxattrat(2) since Linux 6.13).
 *
 * Every buffer the call fills is checked byte by byte before its records
 * are used (check_buffer()): it is filled with 0xaa first, the call must
 * return a multiple of 8 no larger than the size, the records must tile
 * the returned length exactly, each with the length its name needs, zero
 * padding and reserved fields, a NUL after the name, a valid mask and zero
 * fields outside it, all-zero metadata when ->error is set, and nothing
 * may be written past the returned length.
 *
 * A directory read completely (read_all()) must give exactly the entries
 * getdents64() gives, "." and ".." left out, each once, with the d_type
 * getdents64() gives and the metadata fstatat(dfd, name,
 * AT_SYMLINK_NOFOLLOW) gives, field by field (or its errno).
 *
 * Run as root (mount(2), chmod, setresuid(2)); the unprivileged parts run
 * in children with uid/gid 65534.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/dirsync.h>

#include "../kselftest_harness.h"

#ifndef AT_STATX_FORCE_SYNC
#define AT_STATX_FORCE_SYNC	0x2000
#endif
#ifndef AT_STATX_DONT_SYNC
#define AT_STATX_DONT_SYNC	0x4000
#endif

#define NOBODY		65534
#define HDR		((size_t)sizeof(struct dirsync_dirent))
#define MIN_SIZE	((size_t)DIRSYNC_READDIR_BUF_MIN)
#define MIB		(1024 * 1024)

static long rd_nr = -1;

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
	long nr = read_sysfs("readdir_syscall_nr");

	if (nr > 0 && read_sysfs("abi_version") == DIRSYNC_ABI_VERSION)
		rd_nr = nr;
}

/* dirsync_readdir() as is: bytes written or -errno. */
static long rd(long fd, void *buf, size_t size, unsigned long flags)
{
	long ret = syscall(rd_nr, fd, buf, size, flags);

	return ret < 0 ? -errno : ret;
}

static size_t record_len(size_t namelen)
{
	return (HDR + namelen + 1 + 7) & ~(size_t)7;
}

static bool all_bytes(const void *p, size_t n, unsigned char v)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i] != v)
			return false;
	return true;
}

/* One directory entry, as dirsync_readdir() or the oracle describes it. */
struct ent {
	char *name;
	unsigned char d_type;
	int error;			/* positive errno, or 0 */
	struct dirsync_info info;	/* zero when error != 0 */
};

struct list {
	struct ent *v;
	size_t n, cap;
};

static void list_add(struct list *l, const char *name, size_t namelen,
		     unsigned char d_type, int error, const struct dirsync_info *info)
{
	struct ent *e;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			ksft_exit_fail_msg("out of memory\n");
	}
	e = &l->v[l->n++];
	e->name = strndup(name, namelen);
	if (!e->name)
		ksft_exit_fail_msg("out of memory\n");
	e->d_type = d_type;
	e->error = error;
	e->info = *info;
}

static void list_free(struct list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int cmp_ent(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

static void list_sort(struct list *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_ent);
}

/* The dirsync_info that stands for a struct stat (all fields valid). */
static struct dirsync_info info_of(const struct stat *st)
{
	struct dirsync_info i;

	memset(&i, 0, sizeof(i));
	i.exists = 1;
	i.mode = st->st_mode;
	i.size = st->st_size;
	i.mtime = st->st_mtim.tv_sec;
	i.mtime_nsec = st->st_mtim.tv_nsec;
	i.mask = DIRSYNC_INFO_BASIC | DIRSYNC_INFO_UID | DIRSYNC_INFO_GID | DIRSYNC_INFO_NLINK;
	i.ino = st->st_ino;
	i.dev_major = major(st->st_dev);
	i.dev_minor = minor(st->st_dev);
	i.uid = st->st_uid;
	i.gid = st->st_gid;
	i.nlink = st->st_nlink;
	return i;
}

/* The fields of a valid answer outside its mask are zero. */
static bool info_well_formed(const struct dirsync_info *i)
{
	const __u32 always = DIRSYNC_INFO_TYPE | DIRSYNC_INFO_INO | DIRSYNC_INFO_DEV;
	const __u32 known = DIRSYNC_INFO_BASIC | DIRSYNC_INFO_UID | DIRSYNC_INFO_GID |
			    DIRSYNC_INFO_NLINK;

	if (i->exists != 1 || (i->mask & always) != always || i->mask & ~known)
		return false;
	if ((!(i->mask & DIRSYNC_INFO_UID) && i->uid) ||
	    (!(i->mask & DIRSYNC_INFO_GID) && i->gid) ||
	    (!(i->mask & DIRSYNC_INFO_NLINK) && i->nlink))
		return false;
	if (!(i->mask & DIRSYNC_INFO_MODE) && i->mode & ~S_IFMT)
		return false;
	if (!(i->mask & DIRSYNC_INFO_SIZE) && i->size)
		return false;
	if (!(i->mask & DIRSYNC_INFO_MTIME) && (i->mtime || i->mtime_nsec))
		return false;
	return i->mtime_nsec < 1000000000 && !i->__spare0 &&
	       all_bytes(i->__spare, sizeof(i->__spare), 0);
}

/*
 * Checks the @ret bytes dirsync_readdir() returned in @buf (@size bytes,
 * filled with 0xaa before the call) and appends the records to @out.
 * Returns false (after reporting) on the first problem.
 */
static bool check_buffer(struct __test_metadata *_metadata, const unsigned char *buf,
			 size_t size, long ret, struct list *out)
{
	size_t off = 0;

	if (ret <= 0 || ret % 8 || (size_t)ret > size) {
		TH_LOG("returned %ld for a buffer of %zu bytes", ret, size);
		return false;
	}
	if (!all_bytes(buf + ret, size - ret, 0xaa)) {
		TH_LOG("bytes past the returned length %ld were written", ret);
		return false;
	}
	while (off < (size_t)ret) {
		const struct dirsync_dirent *d = (const void *)(buf + off);
		const char *name = (const char *)d->name;

		if ((size_t)ret - off < HDR || d->namelen < 1 || d->namelen > NAME_MAX ||
		    d->reclen != record_len(d->namelen) || d->reclen > (size_t)ret - off) {
			TH_LOG("record at %zu: reclen %u namelen %u, %ld bytes returned",
			       off, d->reclen, d->namelen, ret);
			return false;
		}
		if (d->__pad0 || d->__pad1 || d->__pad2 ||
		    memchr(name, 0, d->namelen) ||
		    !all_bytes(name + d->namelen, d->reclen - HDR - d->namelen, 0)) {
			TH_LOG("record at %zu (%.*s): padding, reserved field or NUL not zero",
			       off, d->namelen, name);
			return false;
		}
		if (d->error ? d->error < 0 || !all_bytes(&d->info, sizeof(d->info), 0)
			     : !info_well_formed(&d->info)) {
			TH_LOG("record at %zu (%.*s): error %d with a bad info",
			       off, d->namelen, name, d->error);
			return false;
		}
		if ((d->namelen == 1 && name[0] == '.') ||
		    (d->namelen == 2 && name[0] == '.' && name[1] == '.')) {
			TH_LOG("\".\" or \"..\" reported");
			return false;
		}
		list_add(out, name, d->namelen, d->d_type, d->error, &d->info);
		off += d->reclen;
	}
	return true;
}

/*
 * Reads the open directory @fd from its position to the end with buffers
 * of @size bytes and @flags, checking each buffer, into @out.  Returns 0,
 * the -errno of a failing call, or -EPROTO after a bad buffer.
 */
static long read_fd(struct __test_metadata *_metadata, int fd, size_t size,
		    unsigned int flags, struct list *out)
{
	unsigned char *buf = malloc(size);
	long ret;

	if (!buf)
		ksft_exit_fail_msg("out of memory\n");
	for (;;) {
		memset(buf, 0xaa, size);
		ret = rd(fd, buf, size, flags);
		if (ret <= 0)
			break;
		if (!check_buffer(_metadata, buf, size, ret, out)) {
			ret = -EPROTO;
			break;
		}
	}
	free(buf);
	return ret;
}

/*
 * A descriptor of the open directory @dfd at position 0: a duplicate
 * rewound (opening "." would need search permission).  -errno on failure.
 */
static int rewound(int dfd)
{
	int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (lseek(fd, 0, SEEK_SET)) {
		close(fd);
		return -EIO;
	}
	return fd;
}

/* read_fd() of the directory @dfd from its start. */
static long read_all(struct __test_metadata *_metadata, int dfd, size_t size,
		     unsigned int flags, struct list *out)
{
	int fd = rewound(dfd);
	long ret;

	if (fd < 0)
		return fd;
	ret = read_fd(_metadata, fd, size, flags, out);
	close(fd);
	return ret;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/*
 * The oracle: getdents64() of the directory @dfd from its start ("." and
 * ".." left out), and fstatat(dfd, name, AT_SYMLINK_NOFOLLOW) of each
 * entry.
 */
static long oracle(int dfd, struct list *out)
{
	int fd = rewound(dfd);
	static char buf[65536];
	long n;

	if (fd < 0)
		return fd;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			struct dirsync_info info;
			struct stat st;
			int err = 0;

			off += d->d_reclen;
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				continue;
			memset(&info, 0, sizeof(info));
			if (fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW))
				err = errno;
			else
				info = info_of(&st);
			list_add(out, d->d_name, strlen(d->d_name), d->d_type, err, &info);
		}
	}
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

static void log_ent(struct __test_metadata *_metadata, const char *what,
		    const char *which, const struct ent *e)
{
	TH_LOG("%s: %s %s: d_type %u error %d mode %o size %llu", what, which,
	       e->name, e->d_type, e->error, e->info.mode,
	       (unsigned long long)e->info.size);
	TH_LOG("%s: %s %s: mtime %lld.%u ino %llu dev %u:%u mask %#x", what,
	       which, e->name, (long long)e->info.mtime, e->info.mtime_nsec,
	       (unsigned long long)e->info.ino, e->info.dev_major,
	       e->info.dev_minor, e->info.mask);
}

/*
 * @got (from dirsync_readdir) and @want (the oracle) hold the same names,
 * each once, with the same d_type and the same error or metadata.
 * Sorts both.
 */
static bool same_entries(struct __test_metadata *_metadata, struct list *got,
			 struct list *want, const char *what)
{
	list_sort(got);
	list_sort(want);
	for (size_t i = 1; i < got->n; i++) {
		if (!strcmp(got->v[i - 1].name, got->v[i].name)) {
			TH_LOG("%s: %s reported twice", what, got->v[i].name);
			return false;
		}
	}
	if (got->n != want->n) {
		TH_LOG("%s: %zu entries, getdents64 gives %zu", what, got->n, want->n);
		return false;
	}
	for (size_t i = 0; i < got->n; i++) {
		const struct ent *g = &got->v[i], *w = &want->v[i];

		if (strcmp(g->name, w->name)) {
			TH_LOG("%s: entry %s, getdents64 gives %s", what, g->name, w->name);
			return false;
		}
		if (g->d_type != w->d_type || g->error != w->error ||
		    memcmp(&g->info, &w->info, sizeof(g->info))) {
			log_ent(_metadata, what, "got", g);
			log_ent(_metadata, what, "want", w);
			return false;
		}
	}
	return true;
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

static bool become(uid_t uid)
{
	return setgroups(0, NULL) == 0 && setresgid(uid, uid, uid) == 0 &&
	       setresuid(uid, uid, uid) == 0;
}

/*
 * A name of exactly @len bytes (1..NAME_MAX) unique for @i: the number,
 * then filler.
 */
static void make_name(char *name, size_t len, unsigned int i)
{
	int n = snprintf(name, NAME_MAX + 1, "%u-", i);

	if ((size_t)n > len)
		len = n;
	memset(name + n, 'a' + i % 26, len - n);
	name[len] = 0;
}

static void create_file(int dfd, const char *name, size_t size)
{
	static const char data[128] = "0123456789";
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);

	if (fd < 0 || write(fd, data, size % sizeof(data)) < 0 || close(fd))
		ksft_exit_fail_msg("creating %s: %s\n", name, strerror(errno));
}

/*
 * Fills @dfd with @n entries whose names have every length from 1 to
 * NAME_MAX in turn; with @kinds, every 7th is a directory, every 11th a
 * symlink and every 13th a fifo, the rest regular files of various sizes
 * (empty ones beyond 1000 entries: a page each would not fit the memory
 * of a KASAN test VM).
 */
static void populate(int dfd, unsigned int n, bool kinds)
{
	char name[NAME_MAX + 1];

	for (unsigned int i = 0; i < n; i++) {
		make_name(name, 1 + (i * 37) % NAME_MAX, i);
		if (kinds && i % 7 == 3) {
			if (mkdirat(dfd, name, 0750))
				ksft_exit_fail_msg("mkdir: %s\n", strerror(errno));
		} else if (kinds && i % 11 == 5) {
			if (symlinkat("target/of/a/symlink", dfd, name))
				ksft_exit_fail_msg("symlink: %s\n", strerror(errno));
		} else if (kinds && i % 13 == 6) {
			if (mknodat(dfd, name, S_IFIFO | 0600, 0))
				ksft_exit_fail_msg("mkfifo: %s\n", strerror(errno));
		} else {
			create_file(dfd, name, n > 1000 ? 0 : i);
		}
	}
}

FIXTURE(dir) {
	char path[64];
	int dfd;
};

FIXTURE_SETUP(dir)
{
	ASSERT_LT(0, rd_nr) TH_LOG("dirsync_readdir is not announced in sysfs");
	snprintf(self->path, sizeof(self->path), "/tmp/dirsync_readdir_test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->path));
	ASSERT_EQ(0, chmod(self->path, 0755));
	self->dfd = open(self->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, self->dfd);
}

FIXTURE_TEARDOWN(dir)
{
	close(self->dfd);
	umount2(self->path, MNT_DETACH);	/* in case a test left one */
	rm_tree(self->path);
}

/*
 * Mounts a ramfs on the fixture's directory and makes its subdirectory
 * "list" the fixture's directory; "staging" is next to it, on the same
 * file system.  ramfs is libfs: its directory position is an ordinal
 * (dcache_readdir() and a cursor), not a stable offset as on tmpfs, so a
 * call that consumed entries and sought back would lose or repeat some
 * when others are unlinked meanwhile.  Returns the fd of "staging".
 */
static int on_ramfs(struct __test_metadata *_metadata, const char *path, int *dfd)
{
	int root, sfd;

	ASSERT_EQ(0, mount("none", path, "ramfs", 0, "mode=0755"))
		TH_LOG("mount ramfs: %s", strerror(errno));
	root = open(path, O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, root);
	ASSERT_EQ(0, mkdirat(root, "list", 0755));
	ASSERT_EQ(0, mkdirat(root, "staging", 0755));
	close(*dfd);
	*dfd = openat(root, "list", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, *dfd);
	sfd = openat(root, "staging", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, sfd);
	close(root);
	return sfd;
}

TEST(discovery)
{
	const char *path = DIRSYNC_SYSFS_DIR "/readdir_syscall_nr";
	char buf[16] = { 0 };
	struct stat st;
	int fd, status;
	pid_t pid;

	ASSERT_LT(0, rd_nr) TH_LOG("dirsync_readdir is not announced in sysfs");
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(0444, st.st_mode & 07777);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(4, read(fd, buf, sizeof(buf)));
#ifdef __x86_64__
	EXPECT_STREQ("464\n", buf);
#endif
	close(fd);
	/* Readable by anyone. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(!become(NOBODY) || read_sysfs("readdir_syscall_nr") != rd_nr);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(struct_layout)
{
	EXPECT_EQ(96, sizeof(struct dirsync_dirent));
	EXPECT_EQ(0, offsetof(struct dirsync_dirent, reclen));
	EXPECT_EQ(2, offsetof(struct dirsync_dirent, d_type));
	EXPECT_EQ(3, offsetof(struct dirsync_dirent, __pad0));
	EXPECT_EQ(4, offsetof(struct dirsync_dirent, namelen));
	EXPECT_EQ(6, offsetof(struct dirsync_dirent, __pad1));
	EXPECT_EQ(8, offsetof(struct dirsync_dirent, error));
	EXPECT_EQ(12, offsetof(struct dirsync_dirent, __pad2));
	EXPECT_EQ(16, offsetof(struct dirsync_dirent, info));
	EXPECT_EQ(96, offsetof(struct dirsync_dirent, name));
	EXPECT_EQ(record_len(DIRSYNC_READDIR_NAME_MAX), MIN_SIZE);
	EXPECT_EQ(4095, DIRSYNC_READDIR_NAME_MAX);
}

/*
 * Reads the fixture's directory completely once per size of @sizes and
 * compares with the oracle.
 */
static void against_oracle(struct __test_metadata *_metadata, int dfd,
			   const size_t *sizes, size_t nsizes, size_t expect)
{
	struct list want = { 0 };

	ASSERT_EQ(0, oracle(dfd, &want));
	ASSERT_EQ(expect, want.n);
	for (size_t s = 0; s < nsizes; s++) {
		struct list got = { 0 };
		char what[64];
		bool ok;

		snprintf(what, sizeof(what), "buffer of %zu bytes", sizes[s]);
		ASSERT_EQ(0, read_all(_metadata, dfd, sizes[s], 0, &got)) TH_LOG("%s", what);
		ok = same_entries(_metadata, &got, &want, what);
		list_free(&got);
		ASSERT_TRUE(ok);
	}
	list_free(&want);
}

/*
 * The buffer sizes of the small directories: every size from the minimum
 * to the minimum + 400 (each record length and alignment of the end of
 * the buffer), then a spread: odd sizes, powers of two from 512 to 1 MiB,
 * and sizes around the 64 KiB chunk the kernel works in.
 */
static size_t small_sizes(size_t *sizes)
{
	static const size_t spread[] = {
		MIN_SIZE + 1001, 8191, 8192, 8195, 12345, 65535, 65536, 65537,
		65536 + 352, 100003, 131071, 131072, 131073, 500001, MIB - 1,
	};
	size_t n = 0;

	for (size_t s = MIN_SIZE; s <= MIN_SIZE + 400; s++)
		sizes[n++] = s;
	for (size_t p = 8192; p <= MIB; p *= 2)
		sizes[n++] = p;
	for (size_t i = 0; i < ARRAY_SIZE(spread); i++)
		sizes[n++] = spread[i];
	return n;
}

TEST_F_TIMEOUT(dir, empty, 120)
{
	size_t sizes[512], n = small_sizes(sizes);

	against_oracle(_metadata, self->dfd, sizes, n, 0);
}

TEST_F_TIMEOUT(dir, one_entry, 120)
{
	char name[NAME_MAX + 1];
	size_t sizes[512], n = small_sizes(sizes);

	/* The longest name tmpfs takes. */
	make_name(name, NAME_MAX, 7);
	create_file(self->dfd, name, 5);
	against_oracle(_metadata, self->dfd, sizes, n, 1);
}

TEST_F_TIMEOUT(dir, thousand_entries, 900)
{
	size_t sizes[512], n = small_sizes(sizes);

	populate(self->dfd, 1000, true);
	against_oracle(_metadata, self->dfd, sizes, n, 1000);
}

/*
 * Owner, group and link count: files of 20 owners and groups that are
 * neither root nor nobody, half of them with a second link in the same
 * directory and a third one in another, next to the usual kinds; the
 * oracle (fstatat) gives st_uid, st_gid and st_nlink.
 */
TEST_F_TIMEOUT(dir, owners_and_links, 300)
{
	size_t sizes[512], n = small_sizes(sizes);
	char name[32], link[32];
	int other;

	populate(self->dfd, 50, true);
	ASSERT_EQ(0, mkdirat(self->dfd, "other", 0755));
	other = openat(self->dfd, "other", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, other);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "owned%d", i);
		create_file(self->dfd, name, i);
		ASSERT_EQ(0, fchownat(self->dfd, name, 1000 + i, 2000 + 3 * i, 0));
		if (i % 2)
			continue;
		snprintf(link, sizeof(link), "link%d", i);
		ASSERT_EQ(0, linkat(self->dfd, name, self->dfd, link, 0));
		ASSERT_EQ(0, linkat(self->dfd, name, other, link, 0));
	}
	close(other);
	against_oracle(_metadata, self->dfd, sizes, n, 50 + 1 + 20 + 10);
}

static void kill_once(struct __test_metadata *_metadata, int dfd);

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * SIGKILL to a task reading the directory @dfd over and over with a 64 MiB
 * buffer (the whole directory would fit in one call if calls were not
 * bounded): it dies in a fraction of the time a full read takes, three
 * times out of three (an unbounded call would be cut short by chance
 * about one time in four).
 */
static void killed_promptly(struct __test_metadata *_metadata, int dfd)
{
	for (int i = 0; i < 3; i++)
		kill_once(_metadata, dfd);
}

static void kill_once(struct __test_metadata *_metadata, int dfd)
{
	const size_t size = 64 * MIB;
	unsigned char *buf;
	double t0, full, latency;
	int pipefd[2], status, fd;
	pid_t pid;
	long n;
	char c;

	buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	fd = rewound(dfd);
	ASSERT_LE(0, fd);
	t0 = now();
	while ((n = rd(fd, buf, size, 0)) > 0)
		;
	full = now() - t0;
	ASSERT_EQ(0, n);
	close(fd);
	ASSERT_EQ(0, pipe(pipefd));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		fd = rewound(dfd);
		for (bool told = false;;) {
			if (rd(fd, buf, size, 0) == 0 && lseek(fd, 0, SEEK_SET))
				_exit(2);
			if (!told && write(pipefd[1], "x", 1) == 1)
				told = true;
		}
	}
	/* The child has made its first call and is in its loop of calls. */
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	t0 = now();
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	latency = now() - t0;
	TH_LOG("full read %.3f s, killed in %.3f s", full, latency);
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(SIGKILL, WTERMSIG(status));
	EXPECT_TRUE(latency < 0.1 || latency * 4 < full);
	close(pipefd[0]);
	close(pipefd[1]);
	munmap(buf, size);
}

/*
 * 100,000 entries: the minimum, odd sizes, powers of two and sizes around
 * the 64 KiB chunk, up to 1 MiB (a full read per size); and a task killed
 * while it reads them.
 */
TEST_F_TIMEOUT(dir, hundred_thousand_entries, 1800)
{
	static const size_t sizes[] = {
		MIN_SIZE, MIN_SIZE + 1, MIN_SIZE + 203, 8192, 8195, 65535, 65536,
		65537, 100003, 262144, MIB - 1, MIB,
	};

	populate(self->dfd, 100000, false);
	against_oracle(_metadata, self->dfd, sizes, ARRAY_SIZE(sizes),
		       100000);
	killed_promptly(_metadata, self->dfd);
}

/*
 * The position is the file's own: dirsync_readdir() and getdents64() on
 * the same descriptor continue each other, and lseek() rewinds.
 */
TEST_F(dir, shares_the_file_position)
{
	struct list got = { 0 }, want = { 0 };
	static char buf[65536];
	unsigned char small[MIN_SIZE];
	long n;
	int fd;

	populate(self->dfd, 200, true);
	ASSERT_EQ(0, oracle(self->dfd, &want));
	fd = openat(self->dfd, ".", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, fd);
	/* A few entries by dirsync_readdir, the rest by getdents64. */
	for (int i = 0; i < 5; i++) {
		memset(small, 0xaa, sizeof(small));
		n = rd(fd, small, sizeof(small), 0);
		ASSERT_TRUE(check_buffer(_metadata, small, sizeof(small), n, &got));
	}
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			struct dirsync_info info;
			struct stat st;

			off += d->d_reclen;
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				continue;
			ASSERT_EQ(0, fstatat(self->dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW));
			info = info_of(&st);
			list_add(&got, d->d_name, strlen(d->d_name), d->d_type, 0, &info);
		}
	}
	ASSERT_EQ(0, n);
	ASSERT_TRUE(same_entries(_metadata, &got, &want, "dirsync_readdir then getdents64"));
	/* At the end: 0, again and again. */
	EXPECT_EQ(0, rd(fd, small, sizeof(small), 0));
	EXPECT_EQ(0, rd(fd, small, sizeof(small), 0));
	/* Rewound: everything again. */
	list_free(&got);
	ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
	ASSERT_EQ(0, read_fd(_metadata, fd, MIN_SIZE, 0, &got));
	ASSERT_TRUE(same_entries(_metadata, &got, &want, "after lseek(0)"));
	list_free(&got);
	list_free(&want);
	close(fd);
}

/*
 * Concurrent changes on SMP: while other threads create (by renaming in
 * from a staging directory), delete and rename entries, every entry
 * present throughout is reported exactly once with the metadata fstatat()
 * gives before and after, no name is reported twice (the changing
 * threads never reuse a name), and a changing entry is either described
 * as it was created or reported gone (ENOENT).
 */
#define STABLE		1000
#define KEEP		30

struct churn {
	int dfd, sfd;
	atomic_bool stop;
	atomic_long created, renamed;
};

static void *creator(void *arg)
{
	struct churn *c = arg;
	char name[32];

	for (long id = 0; !atomic_load(&c->stop); id++) {
		snprintf(name, sizeof(name), "c-%ld", id);
		create_file(c->sfd, name, id % 97);
		if (renameat(c->sfd, name, c->dfd, name))
			ksft_exit_fail_msg("rename in: %s\n", strerror(errno));
		if (id >= KEEP) {
			snprintf(name, sizeof(name), "c-%ld", id - KEEP);
			if (unlinkat(c->dfd, name, 0))
				ksft_exit_fail_msg("unlink: %s\n", strerror(errno));
		}
		atomic_fetch_add(&c->created, 1);
	}
	return NULL;
}

static void *renamer(void *arg)
{
	struct churn *c = arg;
	char from[32], to[32];

	for (long k = 0; !atomic_load(&c->stop); k++) {
		snprintf(from, sizeof(from), "r-%ld", k);
		snprintf(to, sizeof(to), "r-%ld", k + 1);
		if (renameat(c->dfd, from, c->dfd, to))
			ksft_exit_fail_msg("rename: %s\n", strerror(errno));
		atomic_fetch_add(&c->renamed, 1);
	}
	return NULL;
}

/* A changing entry, as it was created: or gone. */
static bool churned_ok(const struct ent *e)
{
	long id;

	if (e->error)
		return e->error == ENOENT;
	if (!S_ISREG(e->info.mode) || e->d_type != DT_REG)
		return false;
	if (sscanf(e->name, "c-%ld", &id) == 1)
		return e->info.size == (unsigned long long)(id % 97);
	return !strncmp(e->name, "r-", 2) && e->info.size == 7;
}

static void concurrent_changes(struct __test_metadata *_metadata, int dfd, int sfd,
			       int passes)
{
	static const size_t sizes[] = {
		MIN_SIZE, MIN_SIZE + 8, 5000, 8192, 12345, 65536, 65537 + 4096, MIB,
	};
	struct dirsync_info base[STABLE];
	struct churn c = { .dfd = dfd, .sfd = sfd };
	char name[32];
	pthread_t th[2];
	long rounds = 0;

	for (int i = 0; i < STABLE; i++) {
		struct stat st;

		snprintf(name, sizeof(name), "s-%04d", i);
		create_file(dfd, name, i % 50);
		ASSERT_EQ(0, fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW));
		base[i] = info_of(&st);
	}
	create_file(dfd, "r-0", 7);
	ASSERT_EQ(0, pthread_create(&th[0], NULL, creator, &c));
	ASSERT_EQ(0, pthread_create(&th[1], NULL, renamer, &c));

	for (int pass = 0; pass < passes; pass++) {
		for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
			struct list got = { 0 };
			int seen[STABLE] = { 0 };
			long ret = read_all(_metadata, dfd, sizes[s], 0, &got);

			ASSERT_EQ(0, ret) TH_LOG("buffer of %zu bytes", sizes[s]);
			list_sort(&got);
			for (size_t i = 0; i < got.n; i++) {
				const struct ent *e = &got.v[i];
				int k;

				ASSERT_TRUE(i == 0 || strcmp(got.v[i - 1].name, e->name))
					TH_LOG("%s reported twice", e->name);
				if (sscanf(e->name, "s-%d", &k) == 1) {
					ASSERT_TRUE(k >= 0 && k < STABLE);
					seen[k]++;
					ASSERT_EQ(0, e->error);
					ASSERT_EQ(0, memcmp(&e->info, &base[k], sizeof(base[k])))
						TH_LOG("%s: not what fstatat gives", e->name);
				} else {
					ASSERT_TRUE(churned_ok(e))
						TH_LOG("%s: error %d mode %o size %llu", e->name,
						       e->error, e->info.mode,
						       (unsigned long long)e->info.size);
				}
			}
			for (int k = 0; k < STABLE; k++) {
				if (seen[k] != 1)
					TH_LOG("s-%04d reported %d times", k, seen[k]);
				ASSERT_EQ(1, seen[k]);
			}
			list_free(&got);
			rounds++;
		}
	}
	atomic_store(&c.stop, true);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	/* The stable entries did not change: fstatat after agrees too. */
	for (int i = 0; i < STABLE; i++) {
		struct stat st;
		struct dirsync_info now;

		snprintf(name, sizeof(name), "s-%04d", i);
		ASSERT_EQ(0, fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW));
		now = info_of(&st);
		ASSERT_EQ(0, memcmp(&now, &base[i], sizeof(now)));
	}
	TH_LOG("%ld full reads during %ld creations+deletions and %ld renames",
	       rounds, atomic_load(&c.created), atomic_load(&c.renamed));
	EXPECT_LT(0, atomic_load(&c.created));
	EXPECT_LT(0, atomic_load(&c.renamed));
}

TEST_F_TIMEOUT(dir, concurrent_changes, 900)
{
	char staging[80];
	int sfd;

	snprintf(staging, sizeof(staging), "%s.staging", self->path);
	ASSERT_EQ(0, mkdir(staging, 0755));
	sfd = open(staging, O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, sfd);
	concurrent_changes(_metadata, self->dfd, sfd, 3);
	close(sfd);
	rm_tree(staging);
}

TEST_F_TIMEOUT(dir, concurrent_changes_ramfs, 900)
{
	int sfd = on_ramfs(_metadata, self->path, &self->dfd);

	/* One pass of every size: the whole run fits the VM's time limit. */
	concurrent_changes(_metadata, self->dfd, sfd, 1);
	close(sfd);
}

/*
 * Buffers whose second page faults every other call, while another thread
 * creates and unlinks other names: each of the 2,000 names present
 * throughout is reported exactly once per full read, on tmpfs and on
 * ramfs.  (Version 2 of the call, which consumed a chunk and sought back
 * after a fault, reported a stable entry twice in the first full read on
 * ramfs, every time.)
 */
#define FAULT_STABLE	2000

struct unlinker {
	int dfd;
	atomic_bool stop;
	atomic_long done;
};

static void *create_unlink(void *arg)
{
	struct unlinker *u = arg;
	char name[32];

	for (long id = 0; !atomic_load(&u->stop); id++) {
		snprintf(name, sizeof(name), "c-%ld", id);
		create_file(u->dfd, name, 1);
		if (id >= KEEP) {
			snprintf(name, sizeof(name), "c-%ld", id - KEEP);
			if (unlinkat(u->dfd, name, 0))
				ksft_exit_fail_msg("unlink: %s\n", strerror(errno));
		}
		atomic_fetch_add(&u->done, 1);
	}
	return NULL;
}

static void faults_under_churn(struct __test_metadata *_metadata, int dfd)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size = 2 * page;
	struct unlinker u = { .dfd = dfd };
	unsigned char *map;
	long faulted = 0, full = 0;
	char name[32];
	pthread_t th;

	ASSERT_LE(MIN_SIZE, size);
	for (int i = 0; i < FAULT_STABLE; i++) {
		snprintf(name, sizeof(name), "s-%04d", i);
		create_file(dfd, name, 1);
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, pthread_create(&th, NULL, create_unlink, &u));
	for (int pass = 0; pass < 8; pass++) {
		int seen[FAULT_STABLE] = { 0 };
		struct list got = { 0 };
		int fd = rewound(dfd);
		long ret;

		ASSERT_LE(0, fd);
		for (long call = 0;; call++) {
			bool protect = call % 2;
			size_t avail = protect ? (size_t)page : size;

			ASSERT_EQ(0, mprotect(map + page, page,
					      protect ? PROT_NONE : PROT_READ | PROT_WRITE));
			memset(map, 0xaa, avail);
			ret = rd(fd, map, size, 0);
			if (ret <= 0)
				break;
			ASSERT_GE(avail, (size_t)ret);
			/* The place of the record that faulted may be zeroed. */
			ASSERT_TRUE(check_buffer(_metadata, map, protect ? ret : avail, ret,
						 &got));
			faulted += protect;
		}
		ASSERT_EQ(0, ret);
		close(fd);
		for (size_t i = 0; i < got.n; i++) {
			int k;

			if (sscanf(got.v[i].name, "s-%d", &k) == 1) {
				ASSERT_TRUE(k >= 0 && k < FAULT_STABLE);
				ASSERT_EQ(0, got.v[i].error);
				seen[k]++;
			} else {
				ASSERT_EQ(0, strncmp(got.v[i].name, "c-", 2));
			}
		}
		for (int k = 0; k < FAULT_STABLE; k++) {
			if (seen[k] != 1)
				TH_LOG("pass %d: s-%04d reported %d times", pass, k, seen[k]);
			ASSERT_EQ(1, seen[k]);
		}
		list_free(&got);
		full++;
	}
	atomic_store(&u.stop, true);
	pthread_join(th, NULL);
	TH_LOG("%ld full reads, %ld calls with a faulting second page, %ld creations+unlinks",
	       full, faulted, atomic_load(&u.done));
	EXPECT_LT(0, faulted);
	EXPECT_LT(0, atomic_load(&u.done));
	munmap(map, size);
}

TEST_F_TIMEOUT(dir, faults_under_churn, 900)
{
	faults_under_churn(_metadata, self->dfd);
}

TEST_F_TIMEOUT(dir, faults_under_churn_ramfs, 900)
{
	int sfd = on_ramfs(_metadata, self->path, &self->dfd);

	faults_under_churn(_metadata, self->dfd);
	close(sfd);
}

/* Unaligned buffers work: the records are the same. */
TEST_F(dir, unaligned_buffer)
{
	struct list got = { 0 }, want = { 0 };
	unsigned char *buf = malloc(MIN_SIZE * 4 + 8);
	unsigned char *copy = aligned_alloc(8, MIN_SIZE * 4);
	int fd;
	long n;

	ASSERT_NE(NULL, copy);

	ASSERT_NE(NULL, buf);
	populate(self->dfd, 300, true);
	ASSERT_EQ(0, oracle(self->dfd, &want));
	for (int shift = 1; shift < 8; shift += 3) {
		fd = rewound(self->dfd);
		ASSERT_LE(0, fd);
		for (;;) {
			memset(buf, 0xaa, MIN_SIZE * 4 + 8);
			n = rd(fd, buf + shift, MIN_SIZE * 4, 0);
			if (n <= 0)
				break;
			/* check_buffer() reads fields in place: copy aligned. */
			memcpy(copy, buf + shift, MIN_SIZE * 4);
			ASSERT_TRUE(check_buffer(_metadata, copy, MIN_SIZE * 4, n, &got));
		}
		ASSERT_EQ(0, n);
		close(fd);
		ASSERT_TRUE(same_entries(_metadata, &got, &want, "unaligned"));
		list_free(&got);
	}
	list_free(&want);
	free(copy);
	free(buf);
}

/* A directory removed while open: -ENOENT, as getdents64() says. */
TEST_F(dir, removed_while_open)
{
	char a[NAME_MAX + 1];
	unsigned char buf[MIN_SIZE];
	struct list got = { 0 };
	static char gd[4096];
	int fd, fd2;
	long n;

	ASSERT_EQ(0, mkdirat(self->dfd, "d", 0755));
	fd = openat(self->dfd, "d", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, fd);
	fd2 = openat(self->dfd, "d", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, fd2);
	/* Names of 200 bytes: 13 records fit in the minimum, not 30. */
	for (int i = 0; i < 30; i++) {
		make_name(a, 200, i);
		create_file(fd, a, 1);
	}
	/* Some entries read, then the directory goes. */
	memset(buf, 0xaa, sizeof(buf));
	n = rd(fd, buf, sizeof(buf), 0);
	ASSERT_TRUE(check_buffer(_metadata, buf, sizeof(buf), n, &got));
	ASSERT_LT(0, got.n);
	ASSERT_GT(30, got.n);
	for (int i = 0; i < 30; i++) {
		make_name(a, 200, i);
		ASSERT_EQ(0, unlinkat(fd, a, 0));
	}
	ASSERT_EQ(0, unlinkat(self->dfd, "d", AT_REMOVEDIR));
	EXPECT_EQ(-ENOENT, rd(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(-ENOENT, rd(fd2, buf, sizeof(buf), 0));
	EXPECT_EQ(-1, syscall(SYS_getdents64, fd2, gd, sizeof(gd)));
	EXPECT_EQ(ENOENT, errno);
	list_free(&got);
	close(fd);
	close(fd2);
}

/* Descriptors that are not directories opened for reading. */
TEST_F(dir, bad_descriptors)
{
	unsigned char buf[MIN_SIZE];
	int fd;

	create_file(self->dfd, "file", 3);
	fd = openat(self->dfd, "file", O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENOTDIR, rd(fd, buf, sizeof(buf), 0));
	close(fd);
	fd = openat(self->dfd, ".", O_PATH | O_DIRECTORY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EBADF, rd(fd, buf, sizeof(buf), 0));
	close(fd);
	/* Closed, negative (as unsigned int) and huge descriptor numbers. */
	EXPECT_EQ(-EBADF, rd(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(-EBADF, rd(-1, buf, sizeof(buf), 0));
	EXPECT_EQ(-EBADF, rd(INT_MAX, buf, sizeof(buf), 0));
	EXPECT_EQ(-EBADF, rd(AT_FDCWD, buf, sizeof(buf), 0));
}

/*
 * A directory that can be read but not searched (0444): as uid 65534 the
 * names come with EACCES and no metadata, as fstatat() fails; root
 * searches it anyway and gets the metadata.
 */
static void unsearchable_as(struct __test_metadata *_metadata, int dfd, uid_t uid)
{
	struct list got = { 0 }, want = { 0 };
	int sub = openat(dfd, "ro", O_RDONLY | O_DIRECTORY);

	/* EXPECT only: this runs in a child for uid 65534. */
	EXPECT_LE(0, sub);
	if (sub < 0)
		return;
	EXPECT_EQ(0, oracle(sub, &want));
	EXPECT_EQ(50, want.n);
	for (size_t i = 0; i < want.n; i++) {
		if (want.v[i].error != (uid ? EACCES : 0))
			TH_LOG("fstatat(%s): error %d", want.v[i].name, want.v[i].error);
		EXPECT_EQ(uid ? EACCES : 0, want.v[i].error);
	}
	EXPECT_EQ(0, read_all(_metadata, sub, MIN_SIZE, 0, &got));
	EXPECT_TRUE(same_entries(_metadata, &got, &want,
				 uid ? "0444 as nobody" : "0444 as root"));
	list_free(&got);
	list_free(&want);
	close(sub);
}

TEST_F(dir, unsearchable_directory)
{
	int sub, status;
	pid_t pid;

	ASSERT_EQ(0, mkdirat(self->dfd, "ro", 0755));
	sub = openat(self->dfd, "ro", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, sub);
	populate(sub, 50, true);
	ASSERT_EQ(0, fchmod(sub, 0444));
	close(sub);
	unsearchable_as(_metadata, self->dfd, 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (!become(NOBODY))
			_exit(2);
		unsearchable_as(_metadata, self->dfd, NOBODY);
		_exit(_metadata->exit_code == KSFT_PASS ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/*
 * Mount points in the directory: a tmpfs on a subdirectory and a file
 * bind-mounted over another report what is mounted, as fstatat() does.
 */
TEST_F(dir, mount_points)
{
	struct list got = { 0 }, want = { 0 };
	struct stat parent, st;
	char path[128], src[128];

	ASSERT_EQ(0, fstat(self->dfd, &parent));
	ASSERT_EQ(0, mkdirat(self->dfd, "mnt", 0755));
	create_file(self->dfd, "under", 1);
	create_file(self->dfd, "over", 20);
	snprintf(path, sizeof(path), "%s/mnt", self->path);
	ASSERT_EQ(0, mount("none", path, "tmpfs", 0, "mode=0710"));
	snprintf(src, sizeof(src), "%s/over", self->path);
	snprintf(path, sizeof(path), "%s/under", self->path);
	ASSERT_EQ(0, mount(src, path, NULL, MS_BIND, NULL));
	ASSERT_EQ(0, oracle(self->dfd, &want));
	ASSERT_EQ(0, read_all(_metadata, self->dfd, MIN_SIZE, 0, &got));
	ASSERT_TRUE(same_entries(_metadata, &got, &want, "mount points"));
	/* And the oracle did cross them. */
	ASSERT_EQ(0, fstatat(self->dfd, "mnt", &st, AT_SYMLINK_NOFOLLOW));
	EXPECT_NE(parent.st_dev, st.st_dev);
	EXPECT_EQ(S_IFDIR | 0710, st.st_mode);
	ASSERT_EQ(0, fstatat(self->dfd, "under", &st, AT_SYMLINK_NOFOLLOW));
	EXPECT_EQ(20, st.st_size);
	EXPECT_EQ(0, umount2(path, 0));
	snprintf(path, sizeof(path), "%s/mnt", self->path);
	EXPECT_EQ(0, umount2(path, 0));
	list_free(&got);
	list_free(&want);
}

/* Sizes below the minimum and bad flags: -EINVAL, nothing written. */
TEST_F(dir, invalid_arguments)
{
	static const unsigned int ok[] = {
		0, AT_SYMLINK_NOFOLLOW, AT_NO_AUTOMOUNT, AT_STATX_FORCE_SYNC,
		AT_STATX_DONT_SYNC, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC,
	};
	const unsigned int valid = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT |
				   AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC;
	unsigned char buf[MIN_SIZE];
	int fd;

	create_file(self->dfd, "x", 1);
	fd = openat(self->dfd, ".", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, fd);
	memset(buf, 0xaa, sizeof(buf));
	EXPECT_EQ(-EINVAL, rd(fd, buf, 0, 0));
	EXPECT_EQ(-EINVAL, rd(fd, buf, 1, 0));
	EXPECT_EQ(-EINVAL, rd(fd, buf, MIN_SIZE - 1, 0));
	EXPECT_EQ(-EINVAL, rd(fd, NULL, MIN_SIZE - 1, 0));
	for (int bit = 0; bit < 32; bit++) {
		if (valid & (1U << bit))
			continue;
		EXPECT_EQ(-EINVAL, rd(fd, buf, sizeof(buf), 1U << bit)) TH_LOG("bit %d", bit);
	}
	EXPECT_EQ(-EINVAL, rd(fd, buf, sizeof(buf), AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC));
	EXPECT_EQ(-EINVAL, rd(fd, buf, sizeof(buf), AT_EMPTY_PATH));
	EXPECT_TRUE(all_bytes(buf, sizeof(buf), 0xaa));
	/* Nothing was consumed by the failures; each valid flag set works. */
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		struct list got = { 0 };
		long n;

		ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
		memset(buf, 0xaa, sizeof(buf));
		n = rd(fd, buf, sizeof(buf), ok[i]);
		ASSERT_TRUE(check_buffer(_metadata, buf, sizeof(buf), n, &got))
			TH_LOG("flags %#x", ok[i]);
		ASSERT_EQ(1, got.n);
		EXPECT_STREQ("x", got.v[0].name);
		EXPECT_EQ(0, got.v[0].error);
		list_free(&got);
	}
	close(fd);
}

/*
 * Bad buffers: -EFAULT when the first record's place faults, and nothing
 * is consumed: the next read gets everything.  A buffer that faults part
 * way gives a short count, as getdents64(), and loses nothing either.
 */
TEST_F(dir, bad_pointers)
{
	long page = sysconf(_SC_PAGESIZE);
	struct list got = { 0 }, want = { 0 };
	size_t big = 65536 + 2 * page;
	unsigned char *map, *ro;
	long n;
	int fd;

	populate(self->dfd, 1000, true);
	ASSERT_EQ(0, oracle(self->dfd, &want));
	fd = openat(self->dfd, ".", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EFAULT, rd(fd, NULL, MIN_SIZE, 0));
	EXPECT_EQ(-EFAULT, rd(fd, (void *)1, MIN_SIZE, 0));
	ro = mmap(NULL, 2 * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	EXPECT_EQ(-EFAULT, rd(fd, ro, 2 * page, 0));
	map = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	/* 8 bytes writable, then a hole: the first record cannot be placed. */
	ASSERT_EQ(0, mprotect(map + page, page, PROT_NONE));
	EXPECT_EQ(-EFAULT, rd(fd, map + page - 8, 2 * page, 0));
	/* Nothing consumed so far: a whole read from here gives everything. */
	ASSERT_EQ(0, read_fd(_metadata, fd, MIN_SIZE, 0, &got));
	ASSERT_TRUE(same_entries(_metadata, &got, &want, "after -EFAULT"));
	list_free(&got);

	/*
	 * One page writable, the next not: short counts of what fits in the
	 * first page, and every entry once over the whole read.
	 */
	ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
	for (;;) {
		memset(map, 0xaa, page);
		n = rd(fd, map, 2 * page, 0);
		if (n <= 0)
			break;
		ASSERT_GE(page, n);
		/* The place of the record that faulted may be zeroed. */
		ASSERT_TRUE(check_buffer(_metadata, map, n, n, &got));
	}
	ASSERT_EQ(0, n);
	ASSERT_TRUE(same_entries(_metadata, &got, &want, "second page faulting"));
	list_free(&got);

	/* A hole in the middle of a large buffer: the records before it. */
	ASSERT_EQ(0, mprotect(map, big, PROT_READ | PROT_WRITE));
	ASSERT_EQ(0, mprotect(map + 8 * page, page, PROT_NONE));
	ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
	memset(map, 0xaa, 8 * page);
	n = rd(fd, map, big, 0);
	ASSERT_LT(0, n);
	ASSERT_GE(8 * page, n);
	ASSERT_TRUE(check_buffer(_metadata, map, n, n, &got));
	ASSERT_EQ(0, read_fd(_metadata, fd, MIN_SIZE, 0, &got));
	ASSERT_TRUE(same_entries(_metadata, &got, &want, "after a partial read"));
	list_free(&got);
	list_free(&want);
	munmap(map, big);
	munmap(ro, 2 * page);
	close(fd);
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * In-VM microbenchmark: ns per call of dirsync_stat(2), statx(2) and
 * fstatat(2) on the same files (existing ones, then missing ones), with one
 * thread and with two threads calling at the same time (same directory,
 * same names), as medians of interleaved passes.  Then ns per entry to get
 * the metadata of every entry of a directory of 1,000, 10,000 and 100,000
 * files: dirsync_readdir(2) against getdents64(2) + fstatat(2) and
 * getdents64(2) + statx(2) (AT_SYMLINK_NOFOLLOW), 64 KiB buffers, medians
 * of interleaved passes, with two reference rows: getdents64(2) alone (the
 * names, no metadata) and a null system call (getppid(2)), which split the
 * cost of a statx(2) per entry into the system call's entry and exit and
 * the rest.  Then the same scans by io_uring, the unpatched kernel's own
 * batching: getdents64(2), then IORING_OP_STATX of each name relative to
 * the directory's fd (AT_SYMLINK_NOFOLLOW), submitted in batches of 32,
 * 256 and 1024 with one io_uring_enter(2) per batch (submit and wait),
 * and the same with IORING_SETUP_SQPOLL (a kernel thread submits; the
 * task only waits).  Raw io_uring_setup(2)/io_uring_enter(2) and the
 * mmap()ed rings, no liburing.  The first pass of every method is checked
 * against statx(2) of each name (type, mode, size, mtime, inode): all
 * return the same records.  Prints tables with the ratios; asserts
 * nothing.  Under QEMU TCG only the ratios mean much.
 *
 * On a kernel without the series (the host: `dirsync-bench --host`), only
 * the getdents64(2), io_uring and reference rows are measured: the same
 * work on hardware, to compare with the VM's.
 *
 * `dirsync-bench --fidelity-tree DIR` prepares the tree of the -a resync
 * benchmark (qemu/guest-bench-resync.sh; busybox has no setfattr): in
 * every directory DIR/dN, files fM with M % 10 == 0 get a user.bench
 * attribute (10%), and files with M % 50 == 1 a second name hM in the
 * same directory (2% more names, hard links); prints the counts.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>

#include "dirsync_test.h"

#define NFILES 1000
#define ROUNDS 21

static long nr;
static char names[NFILES][32];

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/*
 * Passes are timed with the TSC: the guest's clocksource may be jiffies
 * (when TSC calibration fails under a loaded host), too coarse for them.
 * Cycles become ns with the TSC rate measured against CLOCK_MONOTONIC over
 * the whole run, seconds long.
 */
static inline double cycles(void)
{
	return (double)__builtin_ia32_rdtsc();
}

enum method { DIRSYNC, STATX, FSTATAT };

/* Cycles per call of @m over all files once; -1 on an unexpected result. */
static double pass(int m, int dfd, int missing)
{
	struct dirsync_info info;
	struct statx sx;
	struct stat st;
	double t0 = cycles();

	for (int i = 0; i < NFILES; i++) {
		const char *n = names[i] + (missing ? 0 : 1);
		long ret;

		switch (m) {
		case DIRSYNC:
			ret = syscall(nr, dfd, n, &info, 0);
			if (ret != 0 || info.exists != !missing)
				return -1;
			break;
		case STATX:
			ret = statx(dfd, n, 0, STATX_BASIC_STATS, &sx);
			if (ret != 0 && !(missing && errno == ENOENT))
				return -1;
			break;
		case FSTATAT:
			ret = fstatat(dfd, n, &st, 0);
			if (ret != 0 && !(missing && errno == ENOENT))
				return -1;
			break;
		}
	}
	return (cycles() - t0) / NFILES;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * With two threads, the second one (partner) runs the same pass as the
 * main thread at the same time; both start at a barrier and the figure is
 * the mean of their cycles per call.
 */
static pthread_barrier_t start, done;
static struct {
	int m, dfd, missing, quit;
	double cycles;
} job;

static void *partner(void *arg __attribute__((unused)))
{
	for (;;) {
		pthread_barrier_wait(&start);
		if (job.quit)
			return NULL;
		job.cycles = pass(job.m, job.dfd, job.missing);
		pthread_barrier_wait(&done);
	}
}

static double timed(int threads, int m, int dfd, int missing)
{
	double mine;

	if (threads == 1)
		return pass(m, dfd, missing);
	job.m = m;
	job.dfd = dfd;
	job.missing = missing;
	pthread_barrier_wait(&start);
	mine = pass(m, dfd, missing);
	pthread_barrier_wait(&done);
	if (mine < 0 || job.cycles < 0)
		return -1;
	return (mine + job.cycles) / 2;
}

/*
 * Median over ROUNDS passes of cycles per call for each method; the methods
 * take turns within a round so that noise hits them alike.
 */
static int run(int threads, int dfd, int missing, double med[3])
{
	double t[3][ROUNDS];

	for (int m = 0; m < 3; m++)
		if (timed(threads, m, dfd, missing) < 0)	/* warm-up, and a check */
			return -1;
	for (int r = 0; r < ROUNDS; r++) {
		for (int k = 0; k < 3; k++) {
			int m = (k + r) % 3;	/* rotate who goes first */

			t[m][r] = timed(threads, m, dfd, missing);
			if (t[m][r] < 0)
				return -1;
		}
	}
	for (int m = 0; m < 3; m++) {
		qsort(t[m], ROUNDS, sizeof(double), cmp_double);
		med[m] = t[m][ROUNDS / 2];
	}
	return 0;
}

/*
 * Directory scans: ns per entry for all the metadata of a directory's
 * entries.
 */
enum scan {
	READDIR, GD_FSTATAT, GD_STATX, GD_ONLY, NULL_CALL,
	URING_32, URING_256, URING_1024, SQPOLL_32, SQPOLL_256, SQPOLL_1024,
	SCANS
};
#define URINGS		6
#define URING_MAX	1024

#define SCAN_BUF	65536

static long rd_nr;
static char scan_buf[SCAN_BUF] __attribute__((aligned(8)));
/* During the first pass of each method: compare with statx(2). */
static int checking;

static int batch_of(int m)
{
	static const int batch[URINGS] = { 32, 256, 1024, 32, 256, 1024 };

	return batch[m - URING_32];
}

/* One io_uring instance, its rings mapped. */
struct uring {
	int fd, sqpoll;
	unsigned int *sq_tail, *sq_mask, *sq_flags, *sq_array;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static struct uring rings[URINGS];

/* Sets up @u with @entries SQ entries; -1 if io_uring is not available. */
static int uring_init(struct uring *u, unsigned int entries, int sqpoll)
{
	struct io_uring_params p;
	size_t sq_len, cq_len;
	char *sq, *cq;

	memset(&p, 0, sizeof(p));
	if (sqpoll) {
		p.flags = IORING_SETUP_SQPOLL;
		/* ms of polling before it sleeps: long enough within a pass,
		 * short enough not to spin into the next method's pass.
		 */
		p.sq_thread_idle = 10;
	}
	u->fd = syscall(__NR_io_uring_setup, entries, &p);
	if (u->fd < 0)
		return -1;
	u->sqpoll = sqpoll;
	sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned int);
	cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
	sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		  u->fd, IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		return -1;
	cq = sq;
	if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
		cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			  u->fd, IORING_OFF_CQ_RING);
		if (cq == MAP_FAILED)
			return -1;
	}
	u->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
		       IORING_OFF_SQES);
	if (u->sqes == MAP_FAILED)
		return -1;
	u->sq_tail = (void *)(sq + p.sq_off.tail);
	u->sq_mask = (void *)(sq + p.sq_off.ring_mask);
	u->sq_flags = (void *)(sq + p.sq_off.flags);
	u->sq_array = (void *)(sq + p.sq_off.array);
	u->cq_head = (void *)(cq + p.cq_off.head);
	u->cq_tail = (void *)(cq + p.cq_off.tail);
	u->cq_mask = (void *)(cq + p.cq_off.ring_mask);
	u->cqes = (void *)(cq + p.cq_off.cqes);
	for (unsigned int i = 0; i < p.sq_entries; i++)
		u->sq_array[i] = i;
	return 0;
}

static int same_statx(const struct statx *a, const struct statx *b)
{
	return a->stx_mode == b->stx_mode && a->stx_size == b->stx_size &&
	       a->stx_ino == b->stx_ino && a->stx_mtime.tv_sec == b->stx_mtime.tv_sec &&
	       a->stx_mtime.tv_nsec == b->stx_mtime.tv_nsec;
}

/*
 * IORING_OP_STATX of the @n names @names relative to @dfd, all submitted
 * with one io_uring_enter(2) that also waits for them (with SQPOLL the
 * kernel thread submits, the call only waits).  -1 if one fails.
 */
static int uring_statx(struct uring *u, int dfd, const char **names, int n)
{
	static struct statx out[URING_MAX];
	unsigned int tail = *u->sq_tail, head;
	int submitted = 0, done = 0;

	for (int i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = &u->sqes[tail++ & *u->sq_mask];

		memset(sqe, 0, sizeof(*sqe));
		sqe->opcode = IORING_OP_STATX;
		sqe->fd = dfd;
		sqe->addr = (unsigned long)names[i];
		sqe->len = STATX_BASIC_STATS;
		sqe->statx_flags = AT_SYMLINK_NOFOLLOW;
		sqe->off = (unsigned long)&out[i];
		sqe->user_data = i;
	}
	__atomic_store_n(u->sq_tail, tail, __ATOMIC_RELEASE);
	if (u->sqpoll)
		submitted = n;
	while (done < n) {
		unsigned int flags = IORING_ENTER_GETEVENTS;
		long ret;

		if (u->sqpoll && (__atomic_load_n(u->sq_flags, __ATOMIC_ACQUIRE) &
				  IORING_SQ_NEED_WAKEUP))
			flags |= IORING_ENTER_SQ_WAKEUP;
		ret = syscall(__NR_io_uring_enter, u->fd, n - submitted, n - done, flags,
			      NULL, 0);
		if (ret < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY)
			return -1;
		if (ret > 0 && !u->sqpoll)
			submitted += ret;
		head = *u->cq_head;
		while (head != __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE)) {
			struct io_uring_cqe *cqe = &u->cqes[head++ & *u->cq_mask];

			if (cqe->res != 0 || cqe->user_data >= (unsigned long)n)
				return -1;
			if (checking) {
				struct statx sx;

				if (statx(dfd, names[cqe->user_data], AT_SYMLINK_NOFOLLOW,
					  STATX_BASIC_STATS, &sx) ||
				    !same_statx(&sx, &out[cqe->user_data]))
					return -1;
			}
			done++;
		}
		__atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
	}
	return 0;
}

struct gd64 {
	unsigned long long d_ino;
	long long d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Cycles per entry of one scan of @dir by @m; -1 on an unexpected result. */
static double scan_pass(int m, const char *dir, long nfiles)
{
	double t0 = cycles();
	long n, entries = 0;
	struct statx sx;
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		return -1;
	if (m == READDIR && rd_nr < 0) {
		/* Not on this kernel: a row of zeros. */
		close(fd);
		return 0;
	}
	if (m == NULL_CALL) {
		/* As many system calls that do nothing as there are entries. */
		for (long i = 0; i < nfiles; i++)
			syscall(SYS_getppid);
		close(fd);
		return (cycles() - t0) / nfiles;
	}
	if (m == READDIR) {
		while ((n = syscall(rd_nr, fd, scan_buf, sizeof(scan_buf), 0)) > 0) {
			for (long off = 0; off < n;) {
				const struct dirsync_dirent *d = (const void *)(scan_buf + off);

				if (d->error || !d->info.exists || !d->reclen) {
					n = -1;
					break;
				}
				if (checking) {
					struct statx sx;

					if (statx(fd, d->name, AT_SYMLINK_NOFOLLOW,
						  STATX_BASIC_STATS, &sx) ||
					    sx.stx_mode != d->info.mode ||
					    sx.stx_size != d->info.size ||
					    sx.stx_ino != d->info.ino ||
					    sx.stx_mtime.tv_sec != d->info.mtime ||
					    sx.stx_mtime.tv_nsec != d->info.mtime_nsec) {
						n = -1;
						break;
					}
				}
				off += d->reclen;
				entries++;
			}
			if (n < 0)
				break;
		}
	} else if (m >= URING_32) {
		struct uring *u = &rings[m - URING_32];
		static const char *batch[URING_MAX];
		int b = batch_of(m), k = 0;

		if (u->fd < 0) {
			/* No io_uring on this kernel: a row of zeros. */
			close(fd);
			return 0;
		}
		while ((n = syscall(SYS_getdents64, fd, scan_buf, sizeof(scan_buf))) > 0) {
			for (long off = 0; off < n;) {
				const struct gd64 *d = (const void *)(scan_buf + off);

				off += d->d_reclen;
				if (d->d_name[0] == '.' && (!d->d_name[1] ||
				    (d->d_name[1] == '.' && !d->d_name[2])))
					continue;
				batch[k++] = d->d_name;
				entries++;
				if (k == b) {
					if (uring_statx(u, fd, batch, k))
						n = -1;
					k = 0;
				}
				if (n < 0)
					break;
			}
			/* The names point into this buffer: flush before the next. */
			if (n > 0 && k && uring_statx(u, fd, batch, k))
				n = -1;
			k = 0;
			if (n < 0)
				break;
		}
	} else {
		while ((n = syscall(SYS_getdents64, fd, scan_buf, sizeof(scan_buf))) > 0) {
			for (long off = 0; off < n;) {
				const struct gd64 *d = (const void *)(scan_buf + off);

				off += d->d_reclen;
				if (d->d_name[0] == '.' && (!d->d_name[1] ||
				    (d->d_name[1] == '.' && !d->d_name[2])))
					continue;
				if (m == GD_FSTATAT &&
				    fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW))
					n = -1;
				if (m == GD_STATX &&
				    statx(fd, d->d_name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx))
					n = -1;
				entries++;
			}
			if (n < 0)
				break;
		}
	}
	close(fd);
	if (n != 0 || entries != nfiles)
		return -1;
	return (cycles() - t0) / nfiles;
}

/* Median cycles per entry of each scan method over @rounds rounds. */
static int scan_run(const char *dir, long nfiles, int rounds, double med[SCANS])
{
	double t[SCANS][ROUNDS];

	checking = 1;
	for (int m = 0; m < SCANS; m++)
		if (scan_pass(m, dir, nfiles) < 0)	/* warm-up, and a check */
			return -1;
	checking = 0;
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < SCANS; k++) {
			int m = (k + r) % SCANS;

			t[m][r] = scan_pass(m, dir, nfiles);
			if (t[m][r] < 0)
				return -1;
		}
	}
	for (int m = 0; m < SCANS; m++) {
		qsort(t[m], rounds, sizeof(double), cmp_double);
		med[m] = t[m][rounds / 2];
	}
	return 0;
}

/* @host: a kernel without dirsync_readdir is expected (see the top). */
static int scan_bench(int host)
{
	static const long sizes[] = { 1000, 10000, 100000 };
	static const int rounds[] = { ROUNDS, 11, 5 };
	double cyc[3][SCANS], t0, c0, ns_per_cycle;
	char dir[64], name[64];

	rd_nr = dirsync_discover_readdir();
	if (rd_nr < 0 && !host) {
		fprintf(stderr, "bench: dirsync_readdir not available\n");
		return 1;
	}
	for (int i = 0; i < URINGS; i++)
		if (uring_init(&rings[i], batch_of(URING_32 + i), i >= 3)) {
			fprintf(stderr, "bench: io_uring%s not available: %s\n",
				i >= 3 ? " with SQPOLL" : "", strerror(errno));
			rings[i].fd = -1;
		}
	t0 = now_ns();
	c0 = cycles();
	for (int s = 0; s < 3; s++) {
		int dfd;

		snprintf(dir, sizeof(dir), "%s/dirsync-bench-scan.%ld.%d",
			 host ? "/dev/shm" : "/tmp", sizes[s], (int)getpid());
		if (mkdir(dir, 0755) || (dfd = open(dir, O_RDONLY | O_DIRECTORY)) < 0) {
			perror("bench: scan setup");
			return 1;
		}
		for (long i = 0; i < sizes[s]; i++) {
			int fd;

			snprintf(name, sizeof(name), "file-%06ld", i);
			fd = openat(dfd, name, O_WRONLY | O_CREAT, 0644);
			if (fd < 0 || write(fd, name, i % 100) < 0 || close(fd)) {
				perror("bench: scan create");
				return 1;
			}
		}
		if (scan_run(dir, sizes[s], rounds[s], cyc[s])) {
			fprintf(stderr, "bench: a directory scan gave an unexpected result\n");
			return 1;
		}
		for (long i = 0; i < sizes[s]; i++) {
			snprintf(name, sizeof(name), "file-%06ld", i);
			unlinkat(dfd, name, 0);
		}
		close(dfd);
		rmdir(dir);
	}
	ns_per_cycle = (now_ns() - t0) / (cycles() - c0);
	printf("bench: directory scan%s, ns/entry for every entry's metadata, median of %d/%d/%d passes, 64 KiB buffers; ratios: other / dirsync_readdir\n",
	       host ? " (host: no dirsync_readdir)" : "", rounds[0], rounds[1], rounds[2]);
	printf("bench: %-8s %16s %19s %17s %16s %14s\n", "entries", "dirsync_readdir",
	       "getdents64+fstatat", "getdents64+statx", "fstatat/readdir", "statx/readdir");
	for (int s = 0; s < 3; s++) {
		double *c = cyc[s];

		if (rd_nr < 0) {
			printf("bench: %-8ld %16s %19.0f %17.0f %16s %14s\n", sizes[s], "-",
			       c[GD_FSTATAT] * ns_per_cycle, c[GD_STATX] * ns_per_cycle,
			       "-", "-");
			continue;
		}
		printf("bench: %-8ld %16.0f %19.0f %17.0f %16.2f %14.2f\n", sizes[s],
		       c[READDIR] * ns_per_cycle, c[GD_FSTATAT] * ns_per_cycle,
		       c[GD_STATX] * ns_per_cycle, c[GD_FSTATAT] / c[READDIR],
		       c[GD_STATX] / c[READDIR]);
	}
	/*
	 * The reference rows: what a statx(2) per entry adds to the names
	 * alone, and how much of that is a system call's entry and exit.
	 */
	printf("bench: reference, ns/entry: %-8s %17s %13s %16s %14s\n", "entries",
	       "getdents64 alone", "null syscall", "statx - names", "null / statx");
	for (int s = 0; s < 3; s++) {
		double *c = cyc[s], stx = c[GD_STATX] - c[GD_ONLY];

		printf("bench: reference, ns/entry: %-8ld %17.0f %13.0f %16.0f %14.2f\n",
		       sizes[s], c[GD_ONLY] * ns_per_cycle, c[NULL_CALL] * ns_per_cycle,
		       stx * ns_per_cycle, c[NULL_CALL] / stx);
	}
	/*
	 * io_uring: getdents64 + IORING_OP_STATX in batches, without and with
	 * SQPOLL, next to getdents64 + statx; then the best method an
	 * unpatched kernel offers (the least ns/entry of fstatat, statx and
	 * every io_uring row) over dirsync_readdir.
	 */
	printf("bench: io_uring, ns/entry: %-8s %8s %8s %8s %8s %8s %8s %8s %12s %15s\n",
	       "entries", "statx", "ring32", "ring256", "ring1024", "sqpoll32", "sqpoll256",
	       "sqpoll1024", "best/statx", "best/readdir");
	for (int s = 0; s < 3; s++) {
		double *c = cyc[s], best = c[GD_STATX] < c[GD_FSTATAT] ? c[GD_STATX] : c[GD_FSTATAT];
		double ring_best = 0;

		for (int m = URING_32; m < SCANS; m++)
			if (rings[m - URING_32].fd >= 0 && (!ring_best || c[m] < ring_best))
				ring_best = c[m];
		if (ring_best && ring_best < best)
			best = ring_best;
		printf("bench: io_uring, ns/entry: %-8ld %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %12.2f",
		       sizes[s], c[GD_STATX] * ns_per_cycle, c[URING_32] * ns_per_cycle,
		       c[URING_256] * ns_per_cycle, c[URING_1024] * ns_per_cycle,
		       c[SQPOLL_32] * ns_per_cycle, c[SQPOLL_256] * ns_per_cycle,
		       c[SQPOLL_1024] * ns_per_cycle, ring_best / c[GD_STATX]);
		if (rd_nr < 0)
			printf(" %15s\n", "-");
		else
			printf(" %15.2f\n", best / c[READDIR]);
	}
	return 0;
}

static int link_file(const char *from, const char *to)
{
	if (link(from, to)) {
		perror("bench: link");
		return 1;
	}
	return 0;
}

/* See the top comment: xattrs and hard links over a resync tree. */
static int fidelity_tree(const char *root)
{
	long xattrs = 0, links = 0;
	char path[PATH_MAX], link[PATH_MAX];

	for (int d = 0;; d++) {
		struct stat st;

		snprintf(path, sizeof(path), "%s/d%d", root, d);
		if (stat(path, &st))
			break;
		for (int f = 0;; f++) {
			snprintf(path, sizeof(path), "%s/d%d/f%d", root, d, f);
			if (stat(path, &st))
				break;
			if (f % 10 == 0) {
				if (setxattr(path, "user.bench", path, strlen(path), 0)) {
					perror("bench: setxattr");
					return 1;
				}
				xattrs++;
			}
			if (f % 50 == 1) {
				snprintf(link, sizeof(link), "%s/d%d/h%d", root, d, f);
				if (link_file(path, link))
					return 1;
				links++;
			}
		}
	}
	printf("bench fidelity tree: %ld files with an xattr, %ld hard links\n", xattrs, links);
	return 0;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/dirsync-bench.XXXXXX";
	double cyc[2][2][3], t0, c0, ns_per_cycle;
	pthread_t th;
	int dfd;

	if (argc == 2 && !strcmp(argv[1], "--host"))
		return scan_bench(1);
	if (argc == 3 && !strcmp(argv[1], "--fidelity-tree"))
		return fidelity_tree(argv[2]);
	nr = dirsync_discover();
	if (nr < 0) {
		fprintf(stderr, "bench: dirsync_stat not available\n");
		return 1;
	}
	if (!mkdtemp(dir) || (dfd = open(dir, O_RDONLY | O_DIRECTORY)) < 0) {
		perror("bench: setup");
		return 1;
	}
	for (int i = 0; i < NFILES; i++) {
		int fd;

		/* names[i] + 1 exists ("f..."), names[i] ("xf...") does not. */
		snprintf(names[i], sizeof(names[i]), "xfile-%04d", i);
		fd = openat(dfd, names[i] + 1, O_WRONLY | O_CREAT, 0644);
		if (fd < 0 || write(fd, names[i], i % 100) < 0 || close(fd)) {
			perror("bench: create");
			return 1;
		}
	}
	if (pthread_barrier_init(&start, NULL, 2) || pthread_barrier_init(&done, NULL, 2) ||
	    pthread_create(&th, NULL, partner, NULL)) {
		fprintf(stderr, "bench: cannot start the second thread\n");
		return 1;
	}
	t0 = now_ns();
	c0 = cycles();
	for (int threads = 1; threads <= 2; threads++) {
		for (int missing = 0; missing < 2; missing++) {
			if (run(threads, dfd, missing, cyc[threads - 1][missing])) {
				fprintf(stderr, "bench: a call gave an unexpected result\n");
				return 1;
			}
		}
	}
	ns_per_cycle = (now_ns() - t0) / (cycles() - c0);
	job.quit = 1;
	pthread_barrier_wait(&start);
	pthread_join(th, NULL);

	printf("bench: ns/call, median of %d passes over %d names (%ld CPUs); ratios: dirsync_stat / other\n",
	       ROUNDS, NFILES, sysconf(_SC_NPROCESSORS_ONLN));
	printf("bench: %-8s %7s %12s %8s %8s %14s %16s\n", "names", "threads",
	       "dirsync_stat", "statx", "fstatat", "ds/statx", "ds/fstatat");
	for (int threads = 1; threads <= 2; threads++) {
		for (int missing = 0; missing < 2; missing++) {
			double *c = cyc[threads - 1][missing];

			printf("bench: %-8s %7d %12.0f %8.0f %8.0f %14.2f %16.2f\n",
			       missing ? "missing" : "existing", threads,
			       c[DIRSYNC] * ns_per_cycle, c[STATX] * ns_per_cycle,
			       c[FSTATAT] * ns_per_cycle,
			       c[DIRSYNC] / c[STATX], c[DIRSYNC] / c[FSTATAT]);
		}
	}
	fflush(stdout);
	return scan_bench(0);
}

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
 * the rest.  Prints tables with the ratios; asserts nothing.  Under QEMU
 * TCG only the ratios mean much.
 *
 * On a kernel without the series (the host: `dirsync-bench --host`), only
 * the getdents64(2) rows and the reference rows are measured: the same
 * work on hardware, to compare with the VM's.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
enum scan { READDIR, GD_FSTATAT, GD_STATX, GD_ONLY, NULL_CALL, SCANS };

#define SCAN_BUF	65536

static long rd_nr;
static char scan_buf[SCAN_BUF] __attribute__((aligned(8)));

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
				off += d->reclen;
				entries++;
			}
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

	for (int m = 0; m < SCANS; m++)
		if (scan_pass(m, dir, nfiles) < 0)	/* warm-up, and a check */
			return -1;
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

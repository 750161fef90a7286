/*
 * stucktool: the C client of tests/stuck_test.go (issue 9: no process is
 * ever stuck on a channel; 1 MiB messages). Every call is made once and
 * its result printed: EINTR is reported, never retried, so a test sees
 * exactly what a stop, a ptrace attach or a freeze did to a blocked call.
 *
 *   stucktool read PATH BUFSIZE COUNT [usr1]
 *       COUNT read(2)s; prints "ok <len>:<bytes>" or the errno name, one
 *       line each ("EINTR"); with usr1, a SIGUSR1 handler without
 *       SA_RESTART is installed first.
 *   stucktool write PATH MSG [nonblock] [usr1]
 *       one write(2); prints "ok N" or the errno name ("EAGAIN").
 *   stucktool bigwrite PATH N OFFSET SEED
 *       one write(2) of N pattern bytes from a page-aligned buffer + OFFSET;
 *       prints "ok N" or the errno name.
 *   stucktool bigread PATH BUFSIZE OFFSET COUNT
 *       COUNT read(2)s into a page-aligned buffer + OFFSET; prints
 *       "<len>:<bytes>\n" each (as msgtool read does).
 *   stucktool writev PATH NIOV LEN STRIDE OFFSET
 *       one writev(2) of NIOV iovecs of LEN bytes, iovec i at a
 *       page-aligned buffer + OFFSET + i*STRIDE; byte j of the whole write
 *       is 'A' + j%26; prints "ok N" or the errno name.
 *   stucktool race DIR N
 *       N rounds of: mkdir DIR/c, then at once rmdir DIR/c in one thread
 *       and open(DIR/c/F) in another (F cycles msg, ctl, status, shm);
 *       prints "ok=A enoent=B eio=C other=D rmdir_errors=E", then the file
 *       and errno of the first few failures other than ENOENT.
 *   stucktool readers PATH NTHREADS BUFSIZE
 *       opens PATH NTHREADS times (one open at a time), then NTHREADS
 *       threads each make one blocking read(2) of one of the files;
 *       prints "started" once all threads run, and at the end
 *       "eof=A data=B err=C".
 *
 * The pattern byte i of bigwrite is (i ^ i>>8 ^ i>>16 ^ SEED) & 0xff.
 * Exit status 0 if the calls could be made; 1 on setup errors (stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE 4096

static void die(const char *what) {
	fprintf(stderr, "stucktool: %s: %s\n", what, strerror(errno));
	exit(1);
}

static const char *errname(int e) {
	const char *n = strerrorname_np(e);
	return n ? n : "EUNKNOWN";
}

static void on_usr1(int sig) { (void)sig; }

static void handle_usr1(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1; /* no SA_RESTART: the call returns EINTR */
	if (sigaction(SIGUSR1, &sa, NULL) < 0) die("sigaction");
}

/* pagebuf returns n bytes (plus slack) starting on a page boundary. */
static char *pagebuf(size_t n) {
	void *p = mmap(NULL, n + 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) die("mmap");
	return p;
}

static void print_msg(const char *prefix, const char *buf, ssize_t n) {
	printf("%s%zd:", prefix, n);
	fwrite(buf, 1, (size_t)n, stdout);
	putchar('\n');
	fflush(stdout);
}

static int has(int argc, char **argv, int from, const char *word) {
	for (int i = from; i < argc; i++)
		if (strcmp(argv[i], word) == 0) return 1;
	return 0;
}

static int cmd_read(int argc, char **argv) {
	size_t bufsize = (size_t)atol(argv[3]);
	int count = atoi(argv[4]);
	if (has(argc, argv, 5, "usr1")) handle_usr1();
	char *buf = pagebuf(bufsize);
	int fd = open(argv[2], O_RDONLY);
	if (fd < 0) die("open");
	for (int i = 0; i < count; i++) {
		ssize_t r = read(fd, buf, bufsize);
		if (r < 0) {
			printf("%s\n", errname(errno));
			fflush(stdout);
			continue;
		}
		print_msg("ok ", buf, r);
	}
	return 0;
}

static int cmd_write(int argc, char **argv) {
	int flags = O_WRONLY;
	if (has(argc, argv, 4, "nonblock")) flags |= O_NONBLOCK;
	if (has(argc, argv, 4, "usr1")) handle_usr1();
	int fd = open(argv[2], flags);
	if (fd < 0) die("open");
	ssize_t w = write(fd, argv[3], strlen(argv[3]));
	if (w < 0) printf("%s\n", errname(errno));
	else printf("ok %zd\n", w);
	fflush(stdout);
	return 0;
}

static int cmd_bigwrite(char **argv) {
	size_t n = (size_t)atol(argv[3]), off = (size_t)atol(argv[4]);
	unsigned seed = (unsigned)atoi(argv[5]);
	char *buf = pagebuf(n + off) + off;
	for (size_t i = 0; i < n; i++) buf[i] = (char)((i ^ i >> 8 ^ i >> 16 ^ seed) & 0xff);
	int fd = open(argv[2], O_WRONLY);
	if (fd < 0) die("open");
	ssize_t w = write(fd, buf, n);
	if (w < 0) printf("%s\n", errname(errno));
	else printf("ok %zd\n", w);
	return 0;
}

static int cmd_bigread(char **argv) {
	size_t bufsize = (size_t)atol(argv[3]), off = (size_t)atol(argv[4]);
	int count = atoi(argv[5]);
	char *buf = pagebuf(bufsize + off) + off;
	int fd = open(argv[2], O_RDONLY);
	if (fd < 0) die("open");
	for (int i = 0; i < count; i++) {
		ssize_t r = read(fd, buf, bufsize);
		if (r < 0) die("read");
		print_msg("", buf, r);
	}
	return 0;
}

static int cmd_writev(char **argv) {
	int niov = atoi(argv[3]);
	size_t len = (size_t)atol(argv[4]), stride = (size_t)atol(argv[5]), off = (size_t)atol(argv[6]);
	if (niov < 1 || niov > IOV_MAX || len < 1) {
		fprintf(stderr, "stucktool: writev: bad arguments\n");
		return 2;
	}
	char *buf = pagebuf(off + (size_t)niov * stride + len);
	struct iovec *iov = calloc((size_t)niov, sizeof *iov);
	if (!iov) die("calloc");
	size_t j = 0;
	for (int i = 0; i < niov; i++) {
		iov[i].iov_base = buf + off + (size_t)i * stride;
		iov[i].iov_len = len;
		for (size_t k = 0; k < len; k++, j++) ((char *)iov[i].iov_base)[k] = (char)('A' + j % 26);
	}
	int fd = open(argv[2], O_WRONLY);
	if (fd < 0) die("open");
	ssize_t w = writev(fd, iov, niov);
	if (w < 0) printf("%s\n", errname(errno));
	else printf("ok %zd\n", w);
	return 0;
}

/* race */

static pthread_barrier_t race_start, race_end;
static char race_dir[4096];
static int race_rounds;
static int race_rmdir_errs;

static void *race_rmdir(void *arg) {
	(void)arg;
	for (int i = 0; i < race_rounds; i++) {
		pthread_barrier_wait(&race_start);
		if (rmdir(race_dir) < 0) race_rmdir_errs++;
		pthread_barrier_wait(&race_end);
	}
	return NULL;
}

static int cmd_race(char **argv) {
	static const char *files[] = {"msg", "ctl", "status", "shm"};
	snprintf(race_dir, sizeof race_dir, "%s/c", argv[2]);
	race_rounds = atoi(argv[3]);
	pthread_barrier_init(&race_start, NULL, 2);
	pthread_barrier_init(&race_end, NULL, 2);
	pthread_t th;
	if (pthread_create(&th, NULL, race_rmdir, NULL) != 0) die("pthread_create");
	int ok = 0, enoent = 0, eio = 0, other = 0;
	char others[1024] = "";
	for (int i = 0; i < race_rounds; i++) {
		if (mkdir(race_dir, 0777) < 0) die("mkdir");
		char path[4200];
		snprintf(path, sizeof path, "%s/%s", race_dir, files[i % 4]);
		int flags = i % 4 == 2 ? O_RDONLY : O_RDWR | O_NONBLOCK;
		pthread_barrier_wait(&race_start);
		int fd = open(path, flags);
		int e = errno;
		pthread_barrier_wait(&race_end);
		if (fd >= 0) {
			ok++;
			close(fd);
		} else if (e == ENOENT) {
			enoent++;
		} else {
			if (e == EIO) eio++;
			else other++;
			if (eio + other <= 8) /* the first few, with the file */
				snprintf(others + strlen(others), sizeof others - strlen(others), " %s:%s", files[i % 4], errname(e));
		}
	}
	pthread_join(th, NULL);
	printf("ok=%d enoent=%d eio=%d other=%d rmdir_errors=%d%s\n", ok, enoent, eio, other, race_rmdir_errs, others);
	return 0;
}

/* readers */

static const char *readers_path;
static size_t readers_bufsize;
static pthread_mutex_t readers_mu = PTHREAD_MUTEX_INITIALIZER;
static int readers_eof, readers_data, readers_err;

static void *reader(void *arg) {
	int fd = (int)(intptr_t)arg;
	char *buf = malloc(readers_bufsize);
	ssize_t r = -1;
	if (buf) r = read(fd, buf, readers_bufsize);
	pthread_mutex_lock(&readers_mu);
	if (r == 0) readers_eof++;
	else if (r > 0) readers_data++;
	else {
		if (readers_err == 0) fprintf(stderr, "stucktool: reader: %s\n", errname(errno));
		readers_err++;
	}
	pthread_mutex_unlock(&readers_mu);
	close(fd);
	free(buf);
	return NULL;
}

static int cmd_readers(char **argv) {
	readers_path = argv[2];
	int n = atoi(argv[3]);
	readers_bufsize = (size_t)atol(argv[4]);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 << 10);
	pthread_t *th = calloc((size_t)n, sizeof *th);
	if (!th) die("calloc");
	/* One open at a time: the test is about parked reads, not about
	 * concurrent lookups of one name. */
	int *fds = calloc((size_t)n, sizeof *fds);
	if (!fds) die("calloc");
	for (int i = 0; i < n; i++)
		if ((fds[i] = open(readers_path, O_RDONLY)) < 0) die("open");
	for (int i = 0; i < n; i++) {
		int e = pthread_create(&th[i], &attr, reader, (void *)(intptr_t)fds[i]);
		if (e != 0) {
			errno = e;
			die("pthread_create");
		}
	}
	printf("started\n");
	fflush(stdout);
	for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
	printf("eof=%d data=%d err=%d\n", readers_eof, readers_data, readers_err);
	return 0;
}

int main(int argc, char **argv) {
	if (argc >= 5 && strcmp(argv[1], "read") == 0) return cmd_read(argc, argv);
	if (argc >= 4 && strcmp(argv[1], "write") == 0) return cmd_write(argc, argv);
	if (argc == 6 && strcmp(argv[1], "bigwrite") == 0) return cmd_bigwrite(argv);
	if (argc == 6 && strcmp(argv[1], "bigread") == 0) return cmd_bigread(argv);
	if (argc == 7 && strcmp(argv[1], "writev") == 0) return cmd_writev(argv);
	if (argc == 4 && strcmp(argv[1], "race") == 0) return cmd_race(argv);
	if (argc == 5 && strcmp(argv[1], "readers") == 0) return cmd_readers(argv);
	fprintf(stderr, "usage: stucktool read|write|bigwrite|bigread|writev|race|readers PATH ...\n");
	return 2;
}

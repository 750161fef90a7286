/*
 * uringtool: the io_uring client of tests/readers_test.go, built on
 * liburing (cc ... -luring) as an io_uring program would be.
 *
 *   uringtool read PATH N cur|explicit BUFSIZE [async]
 *       N reads, each one io_uring_prep_read + submit + wait, one at a time;
 *       "cur" passes offset -1 (the file position), "explicit" passes an
 *       offset starting at 0 and advanced by each result (offset += n);
 *       "async" sets IOSQE_ASYNC (the read runs in an io-wq worker).
 *       Prints "<len>:<bytes>\n" per result, as msgtool does; stops after a
 *       result of 0 (end of file).
 *   uringtool write PATH MSG...
 *       one io_uring_prep_write (offset -1) per MSG, one at a time; prints
 *       "<len>\n" per result.
 *
 * A failed operation prints "error <op>: <errno name>" to stderr and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *op, int e) {
	const char *n = strerrorname_np(e);
	fprintf(stderr, "uringtool: %s: %s\n", op, n ? n : strerror(e));
	return 1;
}

/* one submits the prepared SQE and returns its result (or -errno). */
static int one(struct io_uring *ring) {
	int r = io_uring_submit(ring);
	if (r != 1) return r < 0 ? r : -EIO;
	struct io_uring_cqe *cqe;
	do r = io_uring_wait_cqe(ring, &cqe); while (r == -EINTR);
	if (r < 0) return r;
	r = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return r;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: uringtool read PATH N cur|explicit BUFSIZE [async] | write PATH MSG...\n");
		return 2;
	}
	struct io_uring ring;
	int r = io_uring_queue_init(8, &ring, 0);
	if (r < 0) return fail("io_uring_queue_init", -r);
	if (strcmp(argv[1], "read") == 0 && (argc == 6 || argc == 7)) {
		int n = atoi(argv[3]), explicit = strcmp(argv[4], "explicit") == 0;
		int async = argc == 7 && strcmp(argv[6], "async") == 0;
		size_t size = (size_t)atol(argv[5]);
		char *buf = malloc(size);
		int fd = open(argv[2], O_RDONLY);
		if (fd < 0) return fail("open", errno);
		unsigned long long off = 0;
		for (int i = 0; i < n; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			io_uring_prep_read(sqe, fd, buf, (unsigned)size, explicit ? off : (__u64)-1);
			if (async) io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
			r = one(&ring);
			if (r < 0) return fail("read", -r);
			printf("%d:", r);
			fwrite(buf, 1, (size_t)r, stdout);
			putchar('\n');
			fflush(stdout);
			off += (unsigned)r;
			if (r == 0) break;
		}
		return 0;
	}
	if (strcmp(argv[1], "write") == 0) {
		int fd = open(argv[2], O_WRONLY);
		if (fd < 0) return fail("open", errno);
		for (int i = 3; i < argc; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			io_uring_prep_write(sqe, fd, argv[i], (unsigned)strlen(argv[i]), (__u64)-1);
			r = one(&ring);
			if (r < 0) return fail("write", -r);
			printf("%d\n", r);
			fflush(stdout);
		}
		return 0;
	}
	fprintf(stderr, "uringtool: bad arguments\n");
	return 2;
}

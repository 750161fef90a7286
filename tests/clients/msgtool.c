/*
 * msgtool: the C client of the ipcfs integration tests. Plain POSIX calls
 * on a channel's msg file, as a C program would make them.
 *
 *   msgtool write PATH MSG...          one write(2) per MSG
 *   msgtool read PATH N BUFSIZE        N read(2)s; prints "<len>:<bytes>\n" each
 *   msgtool poll PATH TIMEOUT_MS       opens O_NONBLOCK and prints each event
 *                                      on a line: "read-eagain" (the first
 *                                      read found nothing), then poll(2) for
 *                                      POLLIN: "ready" or "timeout"; if ready
 *                                      reads one message
 *   msgtool nonblock PATH              O_NONBLOCK read of an empty queue;
 *                                      prints the errno name
 *
 * Exit status 0 on success; errors go to stderr with exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what) {
	fprintf(stderr, "msgtool: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* retry a syscall interrupted by a signal that did not kill us */
static ssize_t xread(int fd, void *buf, size_t n) {
	ssize_t r;
	do r = read(fd, buf, n); while (r < 0 && errno == EINTR);
	return r;
}

static void print_msg(const char *buf, ssize_t n) {
	printf("%zd:", n);
	fwrite(buf, 1, (size_t)n, stdout);
	putchar('\n');
	fflush(stdout);
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: msgtool write|read|poll|nonblock PATH ...\n");
		return 2;
	}
	const char *cmd = argv[1], *path = argv[2];
	if (strcmp(cmd, "write") == 0) {
		int fd = open(path, O_WRONLY);
		if (fd < 0) die("open");
		for (int i = 3; i < argc; i++) {
			size_t n = strlen(argv[i]);
			ssize_t w;
			do w = write(fd, argv[i], n); while (w < 0 && errno == EINTR);
			if (w < 0) die("write");
			if ((size_t)w != n) { fprintf(stderr, "msgtool: short write %zd of %zu\n", w, n); return 1; }
		}
		return close(fd) < 0 ? 1 : 0;
	}
	if (strcmp(cmd, "read") == 0 && argc == 5) {
		int n = atoi(argv[3]);
		size_t bufsize = (size_t)atol(argv[4]);
		char *buf = malloc(bufsize);
		int fd = open(path, O_RDONLY);
		if (fd < 0 || !buf) die("open");
		for (int i = 0; i < n; i++) {
			ssize_t r = xread(fd, buf, bufsize);
			if (r < 0) die("read");
			print_msg(buf, r);
			if (r == 0) break;
		}
		return 0;
	}
	if (strcmp(cmd, "poll") == 0 && argc == 4) {
		int fd = open(path, O_RDONLY | O_NONBLOCK);
		if (fd < 0) die("open");
		char buf[65536];
		ssize_t n = read(fd, buf, sizeof buf);
		if (n >= 0) { print_msg(buf, n); return 0; }
		if (errno != EAGAIN) die("read");
		puts("read-eagain");
		fflush(stdout);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r;
		do r = poll(&p, 1, atoi(argv[3])); while (r < 0 && errno == EINTR);
		if (r < 0) die("poll");
		if (r == 0) { puts("timeout"); return 0; }
		puts("ready");
		n = xread(fd, buf, sizeof buf);
		if (n < 0) die("read");
		print_msg(buf, n);
		return 0;
	}
	if (strcmp(cmd, "nonblock") == 0) {
		int fd = open(path, O_RDONLY | O_NONBLOCK);
		if (fd < 0) die("open");
		char buf[16];
		ssize_t n = read(fd, buf, sizeof buf);
		if (n >= 0) { printf("read %zd bytes\n", n); return 0; }
		puts(errno == EAGAIN ? "EAGAIN" : strerror(errno));
		return 0;
	}
	fprintf(stderr, "msgtool: bad arguments\n");
	return 2;
}

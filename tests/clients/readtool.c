/*
 * readtool: the C client of the "every way the world reads a file" tests
 * (tests/readers_test.go). It reaches a channel's files through the kernel
 * paths other than plain read(2) — sendfile, splice, copy_file_range,
 * readahead, posix_fadvise, mmap, FIONREAD, Linux AIO (raw io_submit, no
 * libaio) — and, to compare, through read/pread/write.
 *
 *   readtool probe
 *
 * reads commands from stdin, one a line, and answers each with exactly one
 * line on stdout, as `soakclient probe` does (so the tests drive it with
 * the same prober): "ok", "ok VALUE...", the errno's name ("EINVAL"), or
 * "error TEXT". An argument may be a Go-quoted string ("a b\n"); data in
 * answers is Go-quoted too. FD names an open file of this process.
 *
 *   open FD PATH r|w|rw[,nonblock][,creat]   close FD
 *   mkdir PATH OCT
 *   write FD DATA          → ok N          pwrite FD DATA OFF → ok N
 *   read FD N              → ok "DATA"     pread FD N OFF     → ok "DATA"
 *   lseek FD OFF set|cur|end → ok POS      fstat FD → ok size=N ino=N
 *   sendfile FD N [OFF]    sendfile(2) into a memfd → ok N "DATA"
 *   splice FD N [OFF]      splice(2) into a pipe    → ok N "DATA"
 *   cfr FD DST N           copy_file_range(2) from FD's position to DST's
 *                                                   → ok N
 *   readahead FD OFF N     readahead(2)             → ok
 *   fadvise FD OFF N       posix_fadvise(POSIX_FADV_WILLNEED) → ok
 *   mmap FD private|shared LEN   mmap(2), then load the first byte
 *                          → ok "BYTE", SIGBUS, SIGSEGV, or mmap's errno
 *   fionread FD            ioctl(FIONREAD)          → ok N
 *   aioread FD N OFF       one io_submit of one IOCB_CMD_PREAD, then a
 *                          io_getevents that does not wait → ok "DATA",
 *                          or the errno (of io_submit, or the event's).
 *                          If io_submit returned before the read completed
 *                          (it went to the background) the answer starts
 *                          with "pending " and the command then waits for
 *                          the event: "pending ok "DATA"", "pending EINTR"
 *   aiowrite FD DATA OFF   the same with IOCB_CMD_PWRITE → ok N
 *   aiosubmit FD K N OFF   K io_submit calls of one PREAD each (N bytes at
 *                          OFF), not waiting for any → ok K
 *   msync PATH LEN         open shm, ftruncate, mmap MAP_SHARED, store,
 *                          msync(MS_SYNC), munmap, close → ok
 *   exit                   _exit(0) at once (with AIO still in flight)
 *
 * SIGUSR1 has a handler installed without SA_RESTART, so the test can
 * interrupt a blocked call: it then answers EINTR (nothing is retried).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAXARGS 8
#define MAXFDS 16

static struct { char name[32]; int fd; } fds[MAXFDS];
static aio_context_t aio;

static void on_usr1(int sig) { (void)sig; }

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t faulted;
static void on_fault(int sig) {
	faulted = sig;
	siglongjmp(fault_jmp, 1);
}

/* out appends to the answer line. */
static char *line;
static size_t line_len, line_cap;
static void out(const char *s, size_t n) {
	if (line_len + n + 1 > line_cap) {
		line_cap = (line_len + n + 1) * 2;
		line = realloc(line, line_cap);
		if (!line) abort();
	}
	memcpy(line + line_len, s, n);
	line_len += n;
	line[line_len] = 0;
}
static void outs(const char *s) { out(s, strlen(s)); }
static void outf(const char *fmt, long long v) {
	char b[64];
	snprintf(b, sizeof b, fmt, v);
	outs(b);
}

/* quote appends data as a Go-quoted string (strconv.Unquote reads it). */
static void quote(const char *p, size_t n) {
	out("\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		char b[8];
		switch (c) {
		case '"': outs("\\\""); break;
		case '\\': outs("\\\\"); break;
		case '\n': outs("\\n"); break;
		case '\t': outs("\\t"); break;
		case '\r': outs("\\r"); break;
		default:
			if (c >= 0x20 && c < 0x7f) {
				out((const char *)&c, 1);
			} else {
				snprintf(b, sizeof b, "\\x%02x", c);
				outs(b);
			}
		}
	}
	out("\"", 1);
}

static void errname(int e) {
	const char *n = strerrorname_np(e);
	if (n) outs(n);
	else outf("errno%lld", e);
}

/* unquote decodes a Go-quoted argument in place; returns its length. */
static size_t unquote(char *s) {
	char *w = s;
	for (char *r = s + 1; *r && *r != '"'; r++) {
		if (*r != '\\') { *w++ = *r; continue; }
		r++;
		switch (*r) {
		case 'n': *w++ = '\n'; break;
		case 't': *w++ = '\t'; break;
		case 'r': *w++ = '\r'; break;
		case '0': *w++ = 0; break;
		case 'x': {
			char h[3] = { r[1], r[2], 0 };
			*w++ = (char)strtol(h, NULL, 16);
			r += 2;
			break;
		}
		default: *w++ = *r;
		}
	}
	*w = 0;
	return (size_t)(w - s);
}

/* split splits a command line into arguments (quoted ones decoded). */
static int split(char *s, char **argv, size_t *lens) {
	int n = 0;
	while (*s && n < MAXARGS) {
		while (*s == ' ') s++;
		if (!*s) break;
		if (*s == '"') {
			char *start = s;
			for (s++; *s && *s != '"'; s++)
				if (*s == '\\' && s[1]) s++;
			if (*s) s++;
			char save = *s;
			*s = 0;
			lens[n] = unquote(start);
			argv[n++] = start;
			if (!save) break;
			s++;
			continue;
		}
		argv[n] = s;
		while (*s && *s != ' ') s++;
		lens[n] = (size_t)(s - argv[n]);
		n++;
		if (*s) *s++ = 0;
	}
	return n;
}

static int getfd(const char *name) {
	for (int i = 0; i < MAXFDS; i++)
		if (fds[i].name[0] && strcmp(fds[i].name, name) == 0) return fds[i].fd;
	return -1;
}

static void setfd(const char *name, int fd) {
	for (int i = 0; i < MAXFDS; i++)
		if (fds[i].name[0] && strcmp(fds[i].name, name) == 0) {
			close(fds[i].fd);
			fds[i].fd = fd;
			return;
		}
	for (int i = 0; i < MAXFDS; i++)
		if (!fds[i].name[0]) {
			snprintf(fds[i].name, sizeof fds[i].name, "%s", name);
			fds[i].fd = fd;
			return;
		}
	abort();
}

static void dropfd(const char *name) {
	for (int i = 0; i < MAXFDS; i++)
		if (fds[i].name[0] && strcmp(fds[i].name, name) == 0) {
			close(fds[i].fd);
			fds[i].name[0] = 0;
		}
}

static int aio_ready(void) {
	if (aio) return 0;
	return (int)syscall(SYS_io_setup, 128, &aio);
}

/* aio_one submits one iocb and answers with its result (see the usage). */
static void aio_one(int fd, int write, char *buf, size_t n, long long off) {
	if (aio_ready() < 0) { errname(errno); return; }
	struct iocb cb = {0}, *cbs[1] = { &cb };
	cb.aio_fildes = (uint32_t)fd;
	cb.aio_lio_opcode = write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
	cb.aio_buf = (uint64_t)(uintptr_t)buf;
	cb.aio_nbytes = n;
	cb.aio_offset = off;
	long r = syscall(SYS_io_submit, aio, 1, cbs);
	if (r < 0) { errname(errno); return; }
	if (r != 1) { outf("error io_submit returned %lld", r); return; }
	struct io_event ev;
	struct timespec zero = {0, 0};
	long got = syscall(SYS_io_getevents, aio, 0, 1, &ev, &zero);
	if (got == 0) {
		outs("pending ");
		got = syscall(SYS_io_getevents, aio, 1, 1, &ev, NULL);
		if (got < 0) { outs("io_getevents "); errname(errno); return; }
	}
	if (got < 0) { errname(errno); return; }
	long long res = (long long)ev.res;
	if (res < 0) { errname((int)-res); return; }
	if (write) outf("ok %lld", res);
	else { outs("ok "); quote(buf, (size_t)res); }
}

static long long num(const char *s) { return strtoll(s, NULL, 0); }

static void command(int argc, char **a, size_t *lens) {
	const char *c = a[0];
	int fd = argc > 1 ? getfd(a[1]) : -1;
#define NEED(n) do { if (argc != (n)) { outs("error bad arguments"); return; } } while (0)
#define NEEDFD do { if (fd < 0) { outs("error no open file "); outs(a[1]); return; } } while (0)
	if (strcmp(c, "open") == 0) {
		NEED(4);
		int flags = O_CLOEXEC;
		char *mode = a[3], *opts = strchr(mode, ',');
		if (opts) *opts++ = 0;
		if (strcmp(mode, "r") == 0) flags |= O_RDONLY;
		else if (strcmp(mode, "w") == 0) flags |= O_WRONLY;
		else if (strcmp(mode, "rw") == 0) flags |= O_RDWR;
		else { outs("error bad mode"); return; }
		if (opts && strstr(opts, "nonblock")) flags |= O_NONBLOCK;
		if (opts && strstr(opts, "creat")) flags |= O_CREAT;
		int f = open(a[2], flags, 0644);
		if (f < 0) { errname(errno); return; }
		setfd(a[1], f);
		outs("ok");
	} else if (strcmp(c, "close") == 0) {
		NEED(2); NEEDFD;
		dropfd(a[1]);
		outs("ok");
	} else if (strcmp(c, "mkdir") == 0) {
		NEED(3);
		if (mkdir(a[1], (mode_t)strtol(a[2], NULL, 8)) < 0) { errname(errno); return; }
		outs("ok");
	} else if (strcmp(c, "write") == 0 || strcmp(c, "pwrite") == 0) {
		int p = c[0] == 'p';
		NEED(p ? 4 : 3); NEEDFD;
		ssize_t r = p ? pwrite(fd, a[2], lens[2], num(a[3])) : write(fd, a[2], lens[2]);
		if (r < 0) { errname(errno); return; }
		outf("ok %lld", r);
	} else if (strcmp(c, "read") == 0 || strcmp(c, "pread") == 0) {
		int p = c[0] == 'p';
		NEED(p ? 4 : 3); NEEDFD;
		size_t n = (size_t)num(a[2]);
		char *buf = malloc(n ? n : 1);
		ssize_t r = p ? pread(fd, buf, n, num(a[3])) : read(fd, buf, n);
		if (r < 0) errname(errno);
		else { outs("ok "); quote(buf, (size_t)r); }
		free(buf);
	} else if (strcmp(c, "lseek") == 0) {
		NEED(4); NEEDFD;
		int wh = strcmp(a[3], "end") == 0 ? SEEK_END : strcmp(a[3], "cur") == 0 ? SEEK_CUR : SEEK_SET;
		off_t r = lseek(fd, num(a[2]), wh);
		if (r < 0) { errname(errno); return; }
		outf("ok %lld", r);
	} else if (strcmp(c, "fstat") == 0) {
		NEED(2); NEEDFD;
		struct stat st;
		if (fstat(fd, &st) < 0) { errname(errno); return; }
		outf("ok size=%lld", st.st_size);
		outf(" ino=%lld", (long long)st.st_ino);
	} else if (strcmp(c, "sendfile") == 0) {
		if (argc != 3 && argc != 4) { outs("error bad arguments"); return; }
		NEEDFD;
		size_t n = (size_t)num(a[2]);
		int m = memfd_create("sendfile", 0);
		if (m < 0) { outs("error memfd"); return; }
		off_t off = argc == 4 ? num(a[3]) : 0;
		ssize_t r = sendfile(m, fd, argc == 4 ? &off : NULL, n);
		if (r < 0) { errname(errno); close(m); return; }
		char *buf = malloc((size_t)r + 1);
		ssize_t k = pread(m, buf, (size_t)r, 0);
		outf("ok %lld ", r);
		quote(buf, k > 0 ? (size_t)k : 0);
		free(buf);
		close(m);
	} else if (strcmp(c, "splice") == 0) {
		if (argc != 3 && argc != 4) { outs("error bad arguments"); return; }
		NEEDFD;
		size_t n = (size_t)num(a[2]);
		int p[2];
		if (pipe2(p, O_NONBLOCK) < 0) { outs("error pipe"); return; }
		fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
		loff_t off = argc == 4 ? num(a[3]) : 0;
		ssize_t r = splice(fd, argc == 4 ? &off : NULL, p[1], NULL, n, 0);
		if (r < 0) { errname(errno); close(p[0]); close(p[1]); return; }
		char *buf = malloc((size_t)r + 1);
		ssize_t k = r ? read(p[0], buf, (size_t)r) : 0;
		outf("ok %lld ", r);
		quote(buf, k > 0 ? (size_t)k : 0);
		free(buf);
		close(p[0]);
		close(p[1]);
	} else if (strcmp(c, "cfr") == 0) {
		NEED(4); NEEDFD;
		int dst = getfd(a[2]);
		if (dst < 0) { outs("error no open file"); return; }
		ssize_t r = copy_file_range(fd, NULL, dst, NULL, (size_t)num(a[3]), 0);
		if (r < 0) { errname(errno); return; }
		outf("ok %lld", r);
	} else if (strcmp(c, "readahead") == 0) {
		NEED(4); NEEDFD;
		if (readahead(fd, num(a[2]), (size_t)num(a[3])) < 0) { errname(errno); return; }
		outs("ok");
	} else if (strcmp(c, "fadvise") == 0) {
		NEED(4); NEEDFD;
		int e = posix_fadvise(fd, num(a[2]), num(a[3]), POSIX_FADV_WILLNEED);
		if (e) { errname(e); return; }
		outs("ok");
	} else if (strcmp(c, "mmap") == 0) {
		NEED(4); NEEDFD;
		size_t n = (size_t)num(a[3]);
		int shared = strcmp(a[2], "shared") == 0;
		char *p = mmap(NULL, n, PROT_READ, shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) { errname(errno); return; }
		struct sigaction sa = { .sa_handler = on_fault }, obus, osegv;
		sigaction(SIGBUS, &sa, &obus);
		sigaction(SIGSEGV, &sa, &osegv);
		faulted = 0;
		volatile char byte = 0;
		if (sigsetjmp(fault_jmp, 1) == 0) byte = p[0];
		sigaction(SIGBUS, &obus, NULL);
		sigaction(SIGSEGV, &osegv, NULL);
		munmap(p, n);
		if (faulted == SIGBUS) outs("SIGBUS");
		else if (faulted) outs("SIGSEGV");
		else { char b = byte; outs("ok "); quote(&b, 1); }
	} else if (strcmp(c, "fionread") == 0) {
		NEED(2); NEEDFD;
		int n = 0;
		if (ioctl(fd, FIONREAD, &n) < 0) { errname(errno); return; }
		outf("ok %lld", n);
	} else if (strcmp(c, "aioread") == 0) {
		NEED(4); NEEDFD;
		size_t n = (size_t)num(a[2]);
		char *buf = malloc(n ? n : 1);
		aio_one(fd, 0, buf, n, num(a[3]));
		free(buf);
	} else if (strcmp(c, "aiowrite") == 0) {
		NEED(4); NEEDFD;
		aio_one(fd, 1, a[2], lens[2], num(a[3]));
	} else if (strcmp(c, "aiosubmit") == 0) {
		NEED(5); NEEDFD;
		if (aio_ready() < 0) { errname(errno); return; }
		long k = (long)num(a[2]);
		size_t n = (size_t)num(a[3]);
		for (long i = 0; i < k; i++) {
			struct iocb *cb = calloc(1, sizeof *cb); /* in flight: never freed */
			cb->aio_fildes = (uint32_t)fd;
			cb->aio_lio_opcode = IOCB_CMD_PREAD;
			cb->aio_buf = (uint64_t)(uintptr_t)malloc(n);
			cb->aio_nbytes = n;
			cb->aio_offset = num(a[4]);
			long r = syscall(SYS_io_submit, aio, 1, &cb);
			if (r != 1) { outf("error io_submit %lld: ", i); errname(errno); return; }
		}
		outf("ok %lld", k);
	} else if (strcmp(c, "msync") == 0) {
		NEED(3);
		size_t n = (size_t)num(a[2]);
		int f = open(a[1], O_RDWR);
		if (f < 0) { errname(errno); return; }
		if (ftruncate(f, (off_t)n) < 0) { errname(errno); close(f); return; }
		char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
		if (p == MAP_FAILED) { errname(errno); close(f); return; }
		memset(p, 'x', n);
		int r = msync(p, n, MS_SYNC), e = errno;
		munmap(p, n);
		close(f);
		if (r < 0) { errname(e); return; }
		outs("ok");
	} else if (strcmp(c, "exit") == 0) {
		fflush(stdout);
		_exit(0);
	} else {
		outs("error unknown command");
	}
}

int main(int argc, char **argv) {
	if (argc != 2 || strcmp(argv[1], "probe") != 0) {
		fprintf(stderr, "usage: readtool probe\n");
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_usr1 }; /* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);
	char *in = NULL;
	size_t cap = 0;
	for (;;) {
		/* getline retries nothing itself: a SIGUSR1 between commands is harmless */
		errno = 0;
		ssize_t n = getline(&in, &cap, stdin);
		if (n < 0) {
			if (errno == EINTR) { clearerr(stdin); continue; }
			return 0;
		}
		if (n > 0 && in[n - 1] == '\n') in[--n] = 0;
		char *args[MAXARGS];
		size_t lens[MAXARGS];
		int k = split(in, args, lens);
		if (k == 0) continue;
		line_len = 0;
		outs("");
		command(k, args, lens);
		printf("%s\n", line);
		fflush(stdout);
	}
}

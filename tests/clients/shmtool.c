/*
 * shmtool: the C client of the ipcfs shared-memory tests. Plain POSIX calls
 * on a channel's shm file, as a C program would make them.
 *
 *   shmtool peer
 *       Reads commands from stdin, one a line, and answers each with one
 *       line on stdout: "ok", "ok VALUE", "err ERRNAME" (a system call
 *       failed) or "bad WHY" (wrong bytes, or a command it cannot do).
 *       The test drives several peers this way and uses the answers as the
 *       handshake between them. Exits 0 at end of input.
 *
 *         open PATH r|rw|rwc     open(2); rwc is O_RDWR|O_CREAT, mode 0666
 *         truncate N             ftruncate(2) of the open file (N may be < 0)
 *         truncpath PATH N       truncate(2) of a path
 *         size                   fstat(2): "ok SIZE"
 *         map LEN                mmap(2) LEN bytes at 0, MAP_SHARED,
 *                                PROT_READ|PROT_WRITE
 *         fill OFF LEN SEED      store the pattern through the mapping
 *         check OFF LEN SEED     compare the mapping with the pattern
 *         pwrite OFF LEN SEED    pwrite(2) the pattern
 *         pread OFF LEN SEED     pread(2) and compare
 *         read OFF LEN SEED      lseek(2), then read(2) and compare
 *         msync                  msync(MS_SYNC) of the whole mapping
 *         resident               mincore(2): "ok PAGES" in the page cache
 *         unmap                  munmap(2)
 *         close                  close(2) the file (a mapping stays)
 *
 *   shmtool recipe PATH SIZE CHECKSEED FILLSEED
 *       The POSIX shared-memory recipe with only the path changed: open
 *       (O_RDWR|O_CREAT), ftruncate, mmap, close; then compare the region
 *       with CHECKSEED's pattern ("-": don't) and store FILLSEED's
 *       ("-": don't); munmap. Prints "ok".
 *
 * The pattern of seed S is the sequence of little-endian 64-bit words
 * w[i] = (i * 0x9E3779B97F4A7C15) XOR (S * 0xD1B54A32D192ED03) (mod 2^64),
 * i = offset / 8; seed 0 is all zeros. tests/shm_test.go, clients/py/shm_peer.py and shmclient
 * compute the same bytes.
 *
 * Access to a mapping past the file's end kills the program with SIGBUS,
 * which the test reports.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the pattern is stored as native words: little-endian only"
#endif

#define K 0x9E3779B97F4A7C15ull
#define C 0xD1B54A32D192ED03ull
#define CHUNK (1 << 20)

static uint8_t pat(uint64_t seed, uint64_t o) {
	if (seed == 0) return 0;
	uint64_t w = (o >> 3) * K ^ seed * C;
	return (uint8_t)(w >> ((o & 7) * 8));
}

/* pattern stores seed's bytes [off, off+len) at p. */
static void pattern(uint8_t *p, uint64_t off, uint64_t len, uint64_t seed) {
	uint64_t o = off, end = off + len;
	for (; o < end && (o & 7); o++) p[o - off] = pat(seed, o);
	for (; o + 8 <= end; o += 8) {
		uint64_t w = seed ? (o >> 3) * K ^ seed * C : 0;
		memcpy(p + (o - off), &w, 8);
	}
	for (; o < end; o++) p[o - off] = pat(seed, o);
}

static uint8_t *scratch, *expect; /* CHUNK bytes each */

/* differs checks got (holding [off, off+n), n <= CHUNK) against seed's
 * pattern; on a difference it answers "bad" and returns 1. */
static int differs(const uint8_t *got, uint64_t off, uint64_t n, uint64_t seed) {
	pattern(expect, off, n, seed);
	if (memcmp(got, expect, n) == 0) return 0;
	for (uint64_t i = 0; i < n; i++)
		if (got[i] != expect[i]) {
			printf("bad at %" PRIu64 ": got 0x%02x want 0x%02x\n", off + i, got[i], expect[i]);
			break;
		}
	return 1;
}

/* compare checks [off, off+len) at p against seed's pattern and answers. */
static void compare(const uint8_t *p, uint64_t off, uint64_t len, uint64_t seed) {
	for (uint64_t done = 0; done < len; done += CHUNK)
		if (differs(p + done, off + done, len - done < CHUNK ? len - done : CHUNK, seed)) return;
	puts("ok");
}

static void fail(void) { printf("err %s\n", strerrorname_np(errno)); }

static int fd = -1;
static uint8_t *map;
static uint64_t maplen;

static int have_file(void) {
	if (fd < 0) puts("bad no open file");
	return fd >= 0;
}

static int in_map(uint64_t off, uint64_t len) {
	if (map == NULL) { puts("bad no mapping"); return 0; }
	if (off > maplen || len > maplen - off) { puts("bad range outside the mapping"); return 0; }
	return 1;
}

/* xfer does pread/pwrite/read of [off, off+len) in chunks. */
static void xfer(const char *how, uint64_t off, uint64_t len, uint64_t seed) {
	int writing = strcmp(how, "pwrite") == 0, seq = strcmp(how, "read") == 0;
	if (!have_file()) return;
	if (seq && lseek(fd, (off_t)off, SEEK_SET) < 0) { fail(); return; }
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < CHUNK ? len - done : CHUNK;
		ssize_t r;
		if (writing) {
			pattern(scratch, off + done, n, seed);
			do r = pwrite(fd, scratch, n, (off_t)(off + done)); while (r < 0 && errno == EINTR);
		} else if (seq) {
			do r = read(fd, scratch, n); while (r < 0 && errno == EINTR);
		} else {
			do r = pread(fd, scratch, n, (off_t)(off + done)); while (r < 0 && errno == EINTR);
		}
		if (r < 0) { fail(); return; }
		if (r == 0) {
			printf("bad %s: end of file at %" PRIu64 ", before %" PRIu64 "\n", how, off + done, off + len);
			return;
		}
		if (!writing && differs(scratch, off + done, (uint64_t)r, seed)) return;
		done += (uint64_t)r;
	}
	puts("ok");
}

static void peer(void) {
	char line[8192], a[4096];
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\n")] = 0;
		char cmd[32] = "";
		int64_t n;
		uint64_t off, len, seed;
		sscanf(line, "%31s", cmd);
		if (strcmp(cmd, "open") == 0 && sscanf(line, "open %4095s %31s", a, cmd) == 2) {
			int flags = strcmp(cmd, "r") == 0 ? O_RDONLY : strcmp(cmd, "rw") == 0 ? O_RDWR : O_RDWR | O_CREAT;
			if (fd >= 0) close(fd);
			fd = open(a, flags, 0666);
			if (fd < 0) fail(); else puts("ok");
		} else if (sscanf(line, "truncate %" SCNd64, &n) == 1) {
			if (!have_file()) continue;
			if (ftruncate(fd, (off_t)n) < 0) fail(); else puts("ok");
		} else if (sscanf(line, "truncpath %4095s %" SCNd64, a, &n) == 2) {
			if (truncate(a, (off_t)n) < 0) fail(); else puts("ok");
		} else if (strcmp(line, "size") == 0) {
			struct stat st;
			if (!have_file()) continue;
			if (fstat(fd, &st) < 0) fail(); else printf("ok %jd\n", (intmax_t)st.st_size);
		} else if (sscanf(line, "map %" SCNu64, &len) == 1) {
			if (!have_file()) continue;
			void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (p == MAP_FAILED) { fail(); continue; }
			if (map) munmap(map, maplen);
			map = p, maplen = len;
			puts("ok");
		} else if (sscanf(line, "fill %" SCNu64 " %" SCNu64 " %" SCNu64, &off, &len, &seed) == 3) {
			if (!in_map(off, len)) continue;
			pattern(map + off, off, len, seed);
			puts("ok");
		} else if (sscanf(line, "check %" SCNu64 " %" SCNu64 " %" SCNu64, &off, &len, &seed) == 3) {
			if (in_map(off, len)) compare(map + off, off, len, seed);
		} else if (sscanf(line, "%31s %" SCNu64 " %" SCNu64 " %" SCNu64, cmd, &off, &len, &seed) == 4 &&
			   (strcmp(cmd, "pwrite") == 0 || strcmp(cmd, "pread") == 0 || strcmp(cmd, "read") == 0)) {
			xfer(cmd, off, len, seed);
		} else if (strcmp(line, "msync") == 0) {
			if (!in_map(0, 0)) continue;
			if (msync(map, maplen, MS_SYNC) < 0) fail(); else puts("ok");
		} else if (strcmp(line, "resident") == 0) {
			if (!in_map(0, 0)) continue;
			long pg = sysconf(_SC_PAGESIZE);
			size_t pages = (maplen + (uint64_t)pg - 1) / (uint64_t)pg;
			unsigned char *vec = malloc(pages ? pages : 1);
			if (!vec || mincore(map, maplen, vec) < 0) { fail(); free(vec); continue; }
			size_t in = 0;
			for (size_t i = 0; i < pages; i++) in += vec[i] & 1;
			free(vec);
			printf("ok %zu\n", in);
		} else if (strcmp(line, "unmap") == 0) {
			if (!in_map(0, 0)) continue;
			if (munmap(map, maplen) < 0) { fail(); continue; }
			map = NULL, maplen = 0;
			puts("ok");
		} else if (strcmp(line, "close") == 0) {
			if (!have_file()) continue;
			int r = close(fd);
			fd = -1;
			if (r < 0) fail(); else puts("ok");
		} else {
			printf("bad unknown command %s\n", line);
		}
	}
}

static void die(const char *what) {
	fprintf(stderr, "shmtool: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* recipe is what a shm_open program does, with a path instead of a name. */
static int recipe(const char *path, const char *sizearg, const char *checkseed, const char *fillseed) {
	off_t size = (off_t)strtoll(sizearg, NULL, 10);
	int f = open(path, O_RDWR | O_CREAT, 0666);
	if (f < 0) die("open");
	if (ftruncate(f, size) < 0) die("ftruncate");
	uint8_t *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
	if (p == MAP_FAILED) die("mmap");
	if (close(f) < 0) die("close");
	if (strcmp(checkseed, "-") != 0) {
		uint64_t seed = strtoull(checkseed, NULL, 10);
		for (uint64_t o = 0; o < (uint64_t)size; o++)
			if (p[o] != pat(seed, o)) {
				fprintf(stderr, "shmtool: recipe: byte %" PRIu64 " is 0x%02x, want 0x%02x\n", o, p[o], pat(seed, o));
				return 1;
			}
	}
	if (strcmp(fillseed, "-") != 0) pattern(p, 0, (uint64_t)size, strtoull(fillseed, NULL, 10));
	if (munmap(p, (size_t)size) < 0) die("munmap");
	puts("ok");
	return 0;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	scratch = malloc(CHUNK), expect = malloc(CHUNK);
	if (!scratch || !expect) die("malloc");
	if (argc == 2 && strcmp(argv[1], "peer") == 0) {
		peer();
		return 0;
	}
	if (argc == 6 && strcmp(argv[1], "recipe") == 0) return recipe(argv[2], argv[3], argv[4], argv[5]);
	fprintf(stderr, "usage: shmtool peer | shmtool recipe PATH SIZE CHECKSEED FILLSEED\n");
	return 2;
}

/*
 * A fault-injecting LD_PRELOAD shim for `tracelens serve` in tests/faults.rs.
 *
 * It acts only on files under $TRACELENS_FAULT_DATA_DIR, and only while a
 * trigger file exists in $TRACELENS_FAULT_DIR:
 *
 *   enospc      write, writev, pwrite, fallocate and ftruncate growing a file
 *               fail with ENOSPC, as on a full disk.
 *   erofs       the same calls, and opening a file to write, fail with EROFS,
 *               as after the file system was remounted read-only.
 *   fail-fsync  the next fsync or fdatasync of a log segment (wal-*.wal)
 *               fails with EIO, once (the trigger is removed), and the bytes
 *               written to that file since its last good sync are zeroed: a
 *               kernel whose writeback failed drops those dirty pages and
 *               does not report the error again.
 *
 * And, for the whole process, while $TRACELENS_FAULT_DIR/clock-offset-ms
 * exists: the wall clock (CLOCK_REALTIME) is moved by the signed number of
 * milliseconds it holds, as when the clock is set back or forth.
 *
 * Build: cc -shared -fPIC -O1 -o shim.so shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536

/* Each log segment's size at its last good sync (-1: not seen yet). */
static off_t synced[MAX_FDS];
static int synced_ready;

static void init_synced(void) {
    if (!synced_ready) {
        for (int i = 0; i < MAX_FDS; i++) synced[i] = -1;
        synced_ready = 1;
    }
}

/* The path of `fd`, or "" when it has none. */
static void fd_path(int fd, char *out, size_t len) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, len - 1);
    out[n > 0 ? n : 0] = '\0';
}

static int under_data_dir(int fd) {
    const char *dir = getenv("TRACELENS_FAULT_DATA_DIR");
    if (!dir || !*dir) return 0;
    char path[PATH_MAX];
    fd_path(fd, path, sizeof path);
    return strncmp(path, dir, strlen(dir)) == 0;
}

static int is_segment(int fd) {
    char path[PATH_MAX];
    fd_path(fd, path, sizeof path);
    const char *name = strrchr(path, '/');
    size_t len = strlen(path);
    return name && strncmp(name + 1, "wal-", 4) == 0 && len > 4 && strcmp(path + len - 4, ".wal") == 0;
}

static int trigger(const char *name) {
    const char *dir = getenv("TRACELENS_FAULT_DIR");
    if (!dir || !*dir) return 0;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static int consume_trigger(const char *name) {
    const char *dir = getenv("TRACELENS_FAULT_DIR");
    if (!dir || !*dir) return 0;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return unlink(path) == 0;
}

static off_t size_of(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_size : 0;
}

/* Before a write to a segment: remember its size as synced the first time. */
static void note(int fd) {
    init_synced();
    if (fd >= 0 && fd < MAX_FDS && synced[fd] < 0 && is_segment(fd)) synced[fd] = size_of(fd);
}

/* The error writes to `fd` fail with now (0: none). */
static int fault(int fd) {
    if (!under_data_dir(fd)) return 0;
    if (trigger("enospc")) return ENOSPC;
    if (trigger("erofs")) return EROFS;
    return 0;
}

static int full(int fd) {
    int e = fault(fd);
    if (e) errno = e;
    return e != 0;
}

/* Opening a file under the data directory to write, while read-only. */
static int refuse_open(const char *path, int flags) {
    const char *dir = getenv("TRACELENS_FAULT_DATA_DIR");
    if (!dir || !*dir || !(flags & (O_WRONLY | O_RDWR | O_CREAT)) || !trigger("erofs")) return 0;
    char resolved[PATH_MAX];
    const char *p = path;
    if (path[0] != '/' && getcwd(resolved, sizeof resolved)) {
        strncat(resolved, "/", sizeof resolved - strlen(resolved) - 1);
        strncat(resolved, path, sizeof resolved - strlen(resolved) - 1);
        p = resolved;
    }
    return strncmp(p, dir, strlen(dir)) == 0;
}

int open64(const char *path, int flags, ...) {
    static int (*real)(const char *, int, ...);
    if (!real) real = dlsym(RTLD_NEXT, "open64");
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    if (refuse_open(path, flags)) { errno = EROFS; return -1; }
    return real(path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    static int (*real)(int, const char *, int, ...);
    if (!real) real = dlsym(RTLD_NEXT, "openat64");
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    if (path[0] == '/' && refuse_open(path, flags)) { errno = EROFS; return -1; }
    return real(dirfd, path, flags, mode);
}

ssize_t write(int fd, const void *buf, size_t count) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = dlsym(RTLD_NEXT, "write");
    if (full(fd)) return -1;
    note(fd);
    return real(fd, buf, count);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    static ssize_t (*real)(int, const struct iovec *, int);
    if (!real) real = dlsym(RTLD_NEXT, "writev");
    if (full(fd)) return -1;
    note(fd);
    return real(fd, iov, iovcnt);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "pwrite64");
    if (full(fd)) return -1;
    note(fd);
    return real(fd, buf, count, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "pwrite");
    if (full(fd)) return -1;
    note(fd);
    return real(fd, buf, count, offset);
}

int fallocate(int fd, int mode, off_t offset, off_t len) {
    static int (*real)(int, int, off_t, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "fallocate");
    if (full(fd)) return -1;
    return real(fd, mode, offset, len);
}

int posix_fallocate(int fd, off_t offset, off_t len) {
    static int (*real)(int, off_t, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "posix_fallocate");
    if (full(fd)) return errno;
    return real(fd, offset, len);
}

int ftruncate(int fd, off_t length) {
    static int (*real)(int, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "ftruncate");
    if (length > size_of(fd) && full(fd)) return -1;
    return real(fd, length);
}

int fallocate64(int fd, int mode, off_t offset, off_t len) {
    static int (*real)(int, int, off_t, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "fallocate64");
    if (full(fd)) return -1;
    return real(fd, mode, offset, len);
}

int posix_fallocate64(int fd, off_t offset, off_t len) {
    static int (*real)(int, off_t, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "posix_fallocate64");
    if (full(fd)) return errno;
    return real(fd, offset, len);
}

int ftruncate64(int fd, off_t length) {
    static int (*real)(int, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "ftruncate64");
    if (length > size_of(fd) && full(fd)) return -1;
    return real(fd, length);
}

/* A sync of `fd` with `real`: fails once when asked to, dropping what was
 * written since the last good sync. */
static int sync_with(int fd, int (*real)(int)) {
    init_synced();
    int segment = fd >= 0 && fd < MAX_FDS && is_segment(fd);
    if (segment && trigger("fail-fsync") && consume_trigger("fail-fsync")) {
        off_t from = synced[fd] < 0 ? 0 : synced[fd];
        off_t to = size_of(fd);
        static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
        if (!real_pwrite) real_pwrite = dlsym(RTLD_NEXT, "pwrite64");
        static char zeros[65536];
        for (off_t at = from; at < to;) {
            size_t n = (size_t)(to - at) < sizeof zeros ? (size_t)(to - at) : sizeof zeros;
            ssize_t w = real_pwrite(fd, zeros, n, at);
            if (w <= 0) break;
            at += w;
        }
        real(fd);
        errno = EIO;
        return -1;
    }
    int r = real(fd);
    if (r == 0 && segment) synced[fd] = size_of(fd);
    return r;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = dlsym(RTLD_NEXT, "clock_gettime");
    int r = real(id, ts);
    if (r != 0 || (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE)) return r;
    const char *dir = getenv("TRACELENS_FAULT_DIR");
    if (!dir || !*dir) return r;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/clock-offset-ms", dir);
    FILE *f = fopen(path, "r");
    if (!f) return r;
    long long offset = 0;
    if (fscanf(f, "%lld", &offset) != 1) offset = 0;
    fclose(f);
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset * 1000000LL;
    ts->tv_sec = ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
    return r;
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "fsync");
    return sync_with(fd, real);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "fdatasync");
    return sync_with(fd, real);
}

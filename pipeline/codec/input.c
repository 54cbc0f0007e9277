/* File byte source for replay: a path or "-" (stdin), with gzip recognised by
 * its magic bytes and inflated with zlib. Only sequential read(2) into one
 * fixed buffer, so pipes work and memory stays flat on multi-GB files. */
#include "tokentally/input.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "tokentally/mem.h"

#define INPUT_BUF_SIZE (256u << 10)

struct tt_input {
        int fd;
        bool own_fd;
        bool gzip;
        bool zinit;
        bool eof;  /* read(2) returned 0 */
        bool done; /* all output delivered */
        char *name;
        int64_t size;
        int64_t nread; /* bytes read from fd so far */
        uint8_t *rbuf;
        size_t rpos, rend; /* unconsumed bytes rbuf[rpos..rend) (plain) */
        z_stream zs;
        char err[160]; /* sticky error, reported once data before it is out */
        bool corrupt;  /* err is about the data (gzip), not read(2) */
        uint8_t peek[TT_INPUT_PEEK_MAX]; /* looked at, not yet read */
        size_t peek_pos, peek_end;
};

static void set_err(char *errstr, size_t errsize, const char *msg) {
        if (errsize)
                snprintf(errstr, errsize, "%s", msg);
}

/* Reads more bytes into rbuf after moving what is left to the front.
 * Returns bytes added, 0 at EOF, -1 on error (errno kept). */
static ssize_t fill(tt_input *in, size_t keep_from, size_t keep_to) {
        size_t keep = keep_to - keep_from;
        if (keep && keep_from)
                memmove(in->rbuf, in->rbuf + keep_from, keep);
        ssize_t n;
        do {
                n = read(in->fd, in->rbuf + keep, INPUT_BUF_SIZE - keep);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
                return -1;
        if (n == 0)
                in->eof = true;
        in->nread += n;
        in->rpos = 0;
        in->rend = keep + (size_t)n;
        return n;
}

tt_input *tt_input_open(const char *path, char *errstr, size_t errsize) {
        tt_input *in = tt_calloc(1, sizeof(*in));
        if (!in) {
                set_err(errstr, errsize, "out of memory");
                return NULL;
        }
        in->fd = -1;
        in->name = tt_strndup(path, strlen(path));
        in->rbuf = tt_malloc(INPUT_BUF_SIZE);
        if (!in->name || !in->rbuf) {
                set_err(errstr, errsize, "out of memory");
                goto fail;
        }
        if (strcmp(path, "-") == 0) {
                in->fd = STDIN_FILENO;
        } else {
                in->fd = open(path, O_RDONLY | O_CLOEXEC);
                if (in->fd < 0) {
                        snprintf(errstr, errsize, "cannot open %s: %s", path,
                                 strerror(errno));
                        goto fail;
                }
                in->own_fd = true;
        }
        struct stat st;
        in->size = -1;
        if (fstat(in->fd, &st) == 0) {
                if (S_ISDIR(st.st_mode)) {
                        snprintf(errstr, errsize, "cannot read %s: %s", path,
                                 strerror(EISDIR));
                        goto fail;
                }
                if (S_ISREG(st.st_mode))
                        in->size = (int64_t)st.st_size;
        }
        /* Peek at the first two bytes for the gzip magic; a pipe may hand
         * them over one at a time. */
        while (in->rend < 2 && !in->eof) {
                if (fill(in, 0, in->rend) < 0) {
                        snprintf(errstr, errsize, "cannot read %s: %s", path,
                                 strerror(errno));
                        goto fail;
                }
        }
        if (in->rend >= 2 && in->rbuf[0] == 0x1f && in->rbuf[1] == 0x8b) {
                in->gzip = true;
                /* 16 + MAX_WBITS: gzip wrapper only, with its CRC-32 and
                 * length trailer checked by zlib. */
                if (inflateInit2(&in->zs, 16 + MAX_WBITS) != Z_OK) {
                        set_err(errstr, errsize,
                                "out of memory (zlib inflateInit2)");
                        goto fail;
                }
                in->zinit = true;
                in->zs.next_in = in->rbuf;
                in->zs.avail_in = (uInt)in->rend;
        }
        return in;
fail:
        tt_input_close(in);
        return NULL;
}

static ssize_t read_plain(tt_input *in, uint8_t *out, size_t n, char *errstr,
                          size_t errsize) {
        if (in->rpos < in->rend) {
                size_t k = in->rend - in->rpos;
                if (k > n)
                        k = n;
                memcpy(out, in->rbuf + in->rpos, k);
                in->rpos += k;
                return (ssize_t)k;
        }
        if (in->eof)
                return 0;
        /* Large reads bypass the buffer: one copy fewer on the hot path. */
        if (n >= INPUT_BUF_SIZE) {
                ssize_t k;
                do {
                        k = read(in->fd, out, n);
                } while (k < 0 && errno == EINTR);
                if (k < 0) {
                        snprintf(errstr, errsize, "cannot read %s: %s",
                                 in->name, strerror(errno));
                        return -1;
                }
                if (k == 0)
                        in->eof = true;
                in->nread += k;
                return k;
        }
        if (fill(in, 0, 0) < 0) {
                snprintf(errstr, errsize, "cannot read %s: %s", in->name,
                         strerror(errno));
                return -1;
        }
        return read_plain(in, out, n, errstr, errsize);
}

static ssize_t read_gzip(tt_input *in, uint8_t *out, size_t n) {
        z_stream *zs = &in->zs;
        zs->next_out = out;
        zs->avail_out = (uInt)n;
        while (zs->avail_out == n) {
                if (in->done)
                        return 0;
                if (zs->avail_in == 0 && !in->eof) {
                        if (fill(in, 0, 0) < 0) {
                                snprintf(in->err, sizeof(in->err),
                                         "cannot read %s: %s", in->name,
                                         strerror(errno));
                                return -1;
                        }
                        zs->next_in = in->rbuf;
                        zs->avail_in = (uInt)in->rend;
                        continue;
                }
                int rc = inflate(zs, Z_NO_FLUSH);
                if (rc == Z_STREAM_END) {
                        /* A gzip file may be several members back to back
                         * (cat a.gz b.gz); look for another one. */
                        if (zs->avail_in == 0 && !in->eof) {
                                if (fill(in, 0, 0) < 0) {
                                        snprintf(in->err, sizeof(in->err),
                                                 "cannot read %s: %s", in->name,
                                                 strerror(errno));
                                        return -1;
                                }
                                zs->next_in = in->rbuf;
                                zs->avail_in = (uInt)in->rend;
                        }
                        if (zs->avail_in == 0 && in->eof) {
                                in->done = true;
                                continue;
                        }
                        inflateReset(zs);
                        continue;
                }
                if (rc == Z_OK)
                        continue;
                in->corrupt = rc != Z_MEM_ERROR;
                if (rc == Z_BUF_ERROR && zs->avail_in == 0 && in->eof) {
                        snprintf(in->err, sizeof(in->err),
                                 "%s: truncated gzip data (unexpected end "
                                 "of file)",
                                 in->name);
                        return -1;
                }
                if (rc == Z_MEM_ERROR) {
                        snprintf(in->err, sizeof(in->err),
                                 "%s: out of memory inflating gzip", in->name);
                        return -1;
                }
                snprintf(in->err, sizeof(in->err), "%s: corrupt gzip data: %s",
                         in->name, zs->msg ? zs->msg : "inflate failed");
                return -1;
        }
        return (ssize_t)(n - zs->avail_out);
}

static ssize_t read_any(tt_input *in, void *buf, size_t n, char *errstr,
                        size_t errsize) {
        if (!in->gzip)
                return read_plain(in, buf, n, errstr, errsize);
        if (in->err[0]) {
                set_err(errstr, errsize, in->err);
                return -1;
        }
        if (n > UINT_MAX) /* zlib counts in uInt */
                n = UINT_MAX;
        ssize_t k = read_gzip(in, buf, n);
        /* Output produced before an error is delivered first; the error is
         * sticky and reported on the next call. */
        size_t produced = n - in->zs.avail_out;
        if (k < 0 && produced > 0)
                return (ssize_t)produced;
        if (k < 0)
                set_err(errstr, errsize, in->err);
        return k;
}

ssize_t tt_input_read(tt_input *in, void *buf, size_t n, char *errstr,
                      size_t errsize) {
        if (n == 0)
                return 0;
        if (in->peek_pos < in->peek_end) {
                size_t k = in->peek_end - in->peek_pos;
                if (k > n)
                        k = n;
                memcpy(buf, in->peek + in->peek_pos, k);
                in->peek_pos += k;
                return (ssize_t)k;
        }
        return read_any(in, buf, n, errstr, errsize);
}

ssize_t tt_input_peek(tt_input *in, void *buf, size_t n, char *errstr,
                      size_t errsize) {
        if (n > TT_INPUT_PEEK_MAX)
                n = TT_INPUT_PEEK_MAX;
        /* Keep what is already looked at, at the front. */
        size_t have = in->peek_end - in->peek_pos;
        memmove(in->peek, in->peek + in->peek_pos, have);
        in->peek_pos = 0;
        in->peek_end = have;
        while (in->peek_end < n) {
                /* A pipe may hand the bytes over one at a time. */
                ssize_t k = read_any(in, in->peek + in->peek_end,
                                     n - in->peek_end, errstr, errsize);
                if (k < 0)
                        return -1;
                if (k == 0)
                        break;
                in->peek_end += (size_t)k;
        }
        size_t k = in->peek_end < n ? in->peek_end : n;
        memcpy(buf, in->peek, k);
        return (ssize_t)k;
}

int64_t tt_input_size(const tt_input *in) {
        return in->size;
}

int64_t tt_input_pos(const tt_input *in) {
        size_t pending = in->gzip ? in->zs.avail_in : in->rend - in->rpos;
        return in->nread - (int64_t)pending;
}

bool tt_input_corrupt(const tt_input *in) {
        return in->err[0] && in->corrupt;
}

const char *tt_input_name(const tt_input *in) {
        return in->name;
}

void tt_input_close(tt_input *in) {
        if (!in)
                return;
        if (in->zinit)
                inflateEnd(&in->zs);
        if (in->own_fd && in->fd >= 0)
                close(in->fd);
        tt_free(in->rbuf);
        tt_free(in->name);
        tt_free(in);
}

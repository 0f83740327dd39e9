/* Buffers and UTF-8 text with Python's `str` semantics (lengths in code points, casefold, repr). */
#include <string.h>

#include "vigilo_native.h"
/* after vigilo_native.h, which brings <stdint.h> */
#include "unicode_tables.h"

vg_str vg_cstr(const char *s) {
    vg_str out = {s, (uint32_t)strlen(s)};
    return out;
}

int vg_eq(vg_str a, const char *s) {
    size_t n = strlen(s);
    return a.n == n && memcmp(a.p, s, n) == 0;
}

/* --- buffers ----------------------------------------------------------------------------------------- */

void buf_put(vg_buf *b, const char *p, uint32_t n) {
    if (b->n + n > b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n) cap *= 2;
        char *grown = vg_alloc(cap);
        if (b->n) memcpy(grown, b->p, b->n);
        b->p = grown;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

void buf_puts(vg_buf *b, const char *s) { buf_put(b, s, (uint32_t)strlen(s)); }

void buf_putc(vg_buf *b, char c) { buf_put(b, &c, 1); }

void buf_str(vg_buf *b, vg_str s) { buf_put(b, s.p, s.n); }

void buf_putu(vg_buf *b, uint64_t v) {
    char digits[24];
    int i = (int)sizeof digits;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_put(b, digits + i, (uint32_t)(sizeof digits - (size_t)i));
}

vg_str buf_done(vg_buf *b) {
    vg_str s = {b->p ? b->p : "", b->n};
    return s;
}

/* --- UTF-8 ------------------------------------------------------------------------------------------- */

uint32_t utf8_decode(const char *p, uint32_t *cp) {
    const uint8_t *s = (const uint8_t *)p;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xE0) {
        *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (s[0] < 0xF0) {
        *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
          (s[3] & 0x3F);
    return 4;
}

void utf8_put(vg_buf *b, uint32_t cp) {
    char out[4];
    uint32_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_put(b, out, n);
}

uint32_t utf8_len(vg_str s) {
    uint32_t count = 0;
    for (uint32_t i = 0; i < s.n; i++) count += ((uint8_t)s.p[i] & 0xC0) != 0x80;
    return count;
}

vg_str utf8_head(vg_str s, uint32_t points) {
    uint32_t i = 0;
    while (i < s.n && points) {
        i++;
        while (i < s.n && ((uint8_t)s.p[i] & 0xC0) == 0x80) i++;
        points--;
    }
    vg_str out = {s.p, i};
    return out;
}

vg_str vg_clip(vg_str s, uint32_t limit) {
    uint32_t length = utf8_len(s);
    if (length <= limit) return s;
    vg_buf b = {0};
    buf_str(&b, utf8_head(s, limit));
    buf_puts(&b, "... (");
    buf_putu(&b, length);
    buf_puts(&b, " chars)");
    return buf_done(&b);
}

int vg_find(vg_str hay, vg_str needle) {
    if (needle.n == 0) return 0;
    if (needle.n > hay.n) return -1;
    const char first = needle.p[0];
    const char *end = hay.p + (hay.n - needle.n);
    for (const char *p = hay.p; p <= end; p++) {
        p = memchr(p, first, (size_t)(end - p) + 1);
        if (p == NULL) return -1;
        if (memcmp(p, needle.p, needle.n) == 0) return (int)(p - hay.p);
    }
    return -1;
}

/* --- casefold and repr ------------------------------------------------------------------------------- */

static int fold_index(uint32_t cp) {
    int lo = 0, hi = (int)(sizeof CASEFOLD / sizeof CASEFOLD[0]) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (CASEFOLD[mid].cp == cp) return mid;
        if (CASEFOLD[mid].cp < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

vg_str vg_casefold(vg_str s) {
    vg_buf b = {0};
    buf_put(&b, "", 0);
    uint32_t i = 0;
    while (i < s.n) {
        uint8_t c = (uint8_t)s.p[i];
        if (c < 0x80) {
            buf_putc(&b, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
            i++;
            continue;
        }
        uint32_t cp;
        uint32_t used = utf8_decode(s.p + i, &cp);
        int at = fold_index(cp);
        if (at < 0) {
            buf_put(&b, s.p + i, used);
        } else {
            for (uint32_t k = 0; k < CASEFOLD[at].n; k++) utf8_put(&b, CASEFOLD[at].to[k]);
        }
        i += used;
    }
    return buf_done(&b);
}

static int printable(uint32_t cp) {
    if (cp < 0x80) return cp >= 0x20 && cp < 0x7F;
    int lo = 0, hi = (int)(sizeof UNPRINTABLE / sizeof UNPRINTABLE[0]) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < UNPRINTABLE[mid][0]) hi = mid - 1;
        else if (cp > UNPRINTABLE[mid][1]) lo = mid + 1;
        else return 0;
    }
    return 1;
}

static void put_hex(vg_buf *b, uint32_t v, int digits) {
    static const char hex[] = "0123456789abcdef";
    for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) buf_putc(b, hex[(v >> shift) & 0xF]);
}

void py_repr(vg_buf *b, vg_str s) {
    int single = memchr(s.p, '\'', s.n) != NULL, dbl = memchr(s.p, '"', s.n) != NULL;
    char quote = single && !dbl ? '"' : '\'';
    buf_putc(b, quote);
    uint32_t i = 0;
    while (i < s.n) {
        uint32_t cp;
        uint32_t used = utf8_decode(s.p + i, &cp);
        if (cp == (uint32_t)quote || cp == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)cp);
        } else if (cp == '\t') {
            buf_puts(b, "\\t");
        } else if (cp == '\n') {
            buf_puts(b, "\\n");
        } else if (cp == '\r') {
            buf_puts(b, "\\r");
        } else if (printable(cp)) {
            buf_put(b, s.p + i, used);
        } else if (cp < 0x100) {
            buf_puts(b, "\\x");
            put_hex(b, cp, 2);
        } else if (cp < 0x10000) {
            buf_puts(b, "\\u");
            put_hex(b, cp, 4);
        } else {
            buf_puts(b, "\\U");
            put_hex(b, cp, 8);
        }
        i += used;
    }
    buf_putc(b, quote);
}

void json_quote(vg_buf *b, vg_str s) {
    buf_putc(b, '"');
    uint32_t i = 0;
    while (i < s.n) {
        uint32_t cp;
        uint32_t used = utf8_decode(s.p + i, &cp);
        i += used;
        switch (cp) {
        case '"': buf_puts(b, "\\\""); continue;
        case '\\': buf_puts(b, "\\\\"); continue;
        case '\n': buf_puts(b, "\\n"); continue;
        case '\r': buf_puts(b, "\\r"); continue;
        case '\t': buf_puts(b, "\\t"); continue;
        case '\b': buf_puts(b, "\\b"); continue;
        case '\f': buf_puts(b, "\\f"); continue;
        default: break;
        }
        if (cp >= 0x20 && cp < 0x7F) {
            buf_putc(b, (char)cp);
        } else if (cp < 0x10000) {
            buf_puts(b, "\\u");
            put_hex(b, cp, 4);
        } else {
            uint32_t v = cp - 0x10000;
            buf_puts(b, "\\u");
            put_hex(b, 0xD800 | (v >> 10), 4);
            buf_puts(b, "\\u");
            put_hex(b, 0xDC00 | (v & 0x3FF), 4);
        }
    }
    buf_putc(b, '"');
}

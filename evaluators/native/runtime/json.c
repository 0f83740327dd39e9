/* JSON the way Python's `json` reads and writes it: integers keep their digits (Python ints are exact),
 * NaN and Infinity are accepted, duplicate keys keep the last value, and the canonical form is
 * json.dumps(sort_keys=True, ensure_ascii=False) with Python's shortest float repr. Errors are the text of
 * the exception CPython 3.14's json.loads raises (the guest's Python), at the same position in code points:
 * json.JSONDecodeError ("Expecting value: line 1 column 1 (char 0)"), or the ValueError of an integer
 * longer than Python's int max str digits. Nesting deeper than MAX_DEPTH is refused; CPython's own limit
 * is its C stack (around 1,000 to 2,000 levels in the sandbox), where the Python guest traps instead. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigilo_native.h"

typedef struct parser {
    const char *s;
    uint32_t n, i;
    const char *error;
    int depth;
} parser;

#define MAX_DEPTH 2000
#define INT_MAX_STR_DIGITS 4300 /* sys.get_int_max_str_digits() */

static void fail(parser *p, const char *what, uint32_t at) {
    if (p->error) return;
    uint32_t line = 1, chars = 0, line_start_chars = 0;
    for (uint32_t k = 0; k < at && k < p->n; k++) {
        if (((uint8_t)p->s[k] & 0xC0) == 0x80) continue;
        chars++;
        if (p->s[k] == '\n') {
            line++;
            line_start_chars = chars;
        }
    }
    vg_buf b = {0};
    buf_puts(&b, what);
    buf_puts(&b, ": line ");
    buf_putu(&b, line);
    buf_puts(&b, " column ");
    buf_putu(&b, chars - line_start_chars + 1);
    buf_puts(&b, " (char ");
    buf_putu(&b, chars);
    buf_puts(&b, ")");
    buf_putc(&b, '\0');
    p->error = b.p;
}

static void skip_ws(parser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static vg_json *node(vg_kind kind) {
    vg_json *v = vg_alloc(sizeof *v);
    memset(v, 0, sizeof *v);
    v->kind = kind;
    return v;
}

/* Four hex digits at `at`; like CPython, they must not end the document (a string is still open). */
static int hex4(parser *p, uint32_t at, uint32_t *out) {
    if (at + 4 >= p->n) return 0;
    uint32_t v = 0;
    for (uint32_t k = 0; k < 4; k++) {
        char c = p->s[at + k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* p->i is just past the opening quote. */
static int parse_string(parser *p, vg_str *out) {
    uint32_t begin = p->i - 1;
    uint32_t run = p->i;
    /* Fast path: no escapes. */
    while (run < p->n && p->s[run] != '"' && p->s[run] != '\\' && (uint8_t)p->s[run] >= 0x20) run++;
    if (run < p->n && p->s[run] == '"') {
        out->p = p->s + p->i;
        out->n = run - p->i;
        p->i = run + 1;
        return 1;
    }
    vg_buf b = {0};
    buf_put(&b, p->s + p->i, run - p->i);
    p->i = run;
    for (;;) {
        if (p->i >= p->n) {
            fail(p, "Unterminated string starting at", begin);
            return 0;
        }
        uint8_t c = (uint8_t)p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20) {
            fail(p, "Invalid control character at", p->i);
            return 0;
        }
        if (c != '\\') {
            buf_putc(&b, (char)c);
            p->i++;
            continue;
        }
        if (p->i + 1 >= p->n) {
            fail(p, "Unterminated string starting at", begin);
            return 0;
        }
        char e = p->s[p->i + 1];
        const char *simple = NULL;
        switch (e) {
        case '"': simple = "\""; break;
        case '\\': simple = "\\"; break;
        case '/': simple = "/"; break;
        case 'b': simple = "\b"; break;
        case 'f': simple = "\f"; break;
        case 'n': simple = "\n"; break;
        case 'r': simple = "\r"; break;
        case 't': simple = "\t"; break;
        default: break;
        }
        if (simple) {
            buf_putc(&b, simple[0]);
            p->i += 2;
            continue;
        }
        if (e != 'u') {
            fail(p, "Invalid \\escape", p->i);
            return 0;
        }
        uint32_t cp;
        if (!hex4(p, p->i + 2, &cp)) {
            fail(p, "Invalid \\uXXXX escape", p->i + 1);
            return 0;
        }
        p->i += 6;
        uint32_t low;
        if (cp >= 0xD800 && cp <= 0xDBFF && p->i + 6 < p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u' &&
            hex4(p, p->i + 2, &low) && low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            p->i += 6;
        }
        utf8_put(&b, cp); /* a lone surrogate is kept as its 3-byte form, as Python keeps it in a str */
    }
    *out = buf_done(&b);
    return 1;
}

static vg_json *parse_value(parser *p);

static vg_json *parse_number(parser *p) {
    uint32_t start = p->i, k = p->i;
    if (k < p->n && p->s[k] == '-') k++;
    if (k >= p->n || p->s[k] < '0' || p->s[k] > '9') return NULL;
    if (p->s[k] == '0') k++;
    else
        while (k < p->n && p->s[k] >= '0' && p->s[k] <= '9') k++;
    uint32_t int_end = k;
    int is_float = 0;
    if (k + 1 < p->n && p->s[k] == '.' && p->s[k + 1] >= '0' && p->s[k + 1] <= '9') {
        k += 2;
        while (k < p->n && p->s[k] >= '0' && p->s[k] <= '9') k++;
        is_float = 1;
    }
    if (k < p->n && (p->s[k] == 'e' || p->s[k] == 'E')) {
        uint32_t e = k + 1;
        if (e < p->n && (p->s[e] == '+' || p->s[e] == '-')) e++;
        if (e < p->n && p->s[e] >= '0' && p->s[e] <= '9') {
            while (e < p->n && p->s[e] >= '0' && p->s[e] <= '9') e++;
            k = e;
            is_float = 1;
        }
    }
    p->i = k;
    if (!is_float) {
        uint32_t digits = int_end - start - (p->s[start] == '-');
        if (digits > INT_MAX_STR_DIGITS && !p->error) {
            vg_buf b = {0};
            buf_puts(&b, "Exceeds the limit (4300 digits) for integer string conversion: value has ");
            buf_putu(&b, digits);
            buf_puts(&b, " digits; use sys.set_int_max_str_digits() to increase the limit");
            buf_putc(&b, '\0');
            p->error = b.p;
            return NULL;
        }
        vg_json *v = node(J_INT);
        v->u.text.p = p->s + start;
        v->u.text.n = int_end - start;
        if (v->u.text.n == 2 && v->u.text.p[0] == '-' && v->u.text.p[1] == '0') v->u.text = vg_cstr("0");
        return v;
    }
    char *copy = vg_alloc(k - start + 1);
    memcpy(copy, p->s + start, k - start);
    copy[k - start] = '\0';
    vg_json *v = node(J_FLOAT);
    v->u.number = strtod(copy, NULL);
    return v;
}

static int starts(parser *p, const char *word) {
    size_t n = strlen(word);
    return p->i + n <= p->n && memcmp(p->s + p->i, word, n) == 0;
}

static vg_json *parse_container(parser *p, int object) {
    if (++p->depth > MAX_DEPTH) {
        fail(p, "JSON nested too deeply at", p->i);
        return NULL;
    }
    p->i++;
    uint32_t cap = 8, n = 0;
    vg_json **items = NULL;
    vg_member *members = NULL;
    if (object) members = vg_alloc(cap * sizeof *members);
    else items = vg_alloc(cap * sizeof *items);
    skip_ws(p);
    char close = object ? '}' : ']';
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
    } else {
        for (;;) {
            vg_str key = {0};
            if (object) {
                skip_ws(p);
                if (p->i >= p->n || p->s[p->i] != '"') {
                    fail(p, "Expecting property name enclosed in double quotes", p->i);
                    return NULL;
                }
                p->i++;
                if (!parse_string(p, &key)) return NULL;
                skip_ws(p);
                if (p->i >= p->n || p->s[p->i] != ':') {
                    fail(p, "Expecting ':' delimiter", p->i);
                    return NULL;
                }
                p->i++;
            }
            skip_ws(p);
            vg_json *item = parse_value(p);
            if (item == NULL) return NULL;
            if (object) {
                uint32_t k = 0;
                while (k < n && !(members[k].key.n == key.n && memcmp(members[k].key.p, key.p, key.n) == 0)) k++;
                if (k < n) {
                    members[k].value = item; /* a duplicate key: Python keeps the last value */
                    goto next;
                }
            }
            if (n == cap) {
                cap *= 2;
                if (object) {
                    vg_member *grown = vg_alloc(cap * sizeof *grown);
                    memcpy(grown, members, n * sizeof *grown);
                    members = grown;
                } else {
                    vg_json **grown = vg_alloc(cap * sizeof *grown);
                    memcpy(grown, items, n * sizeof *grown);
                    items = grown;
                }
            }
            if (object) {
                members[n].key = key;
                members[n].value = item;
            } else {
                items[n] = item;
            }
            n++;
        next:
            skip_ws(p);
            if (p->i < p->n && p->s[p->i] == close) {
                p->i++;
                break;
            }
            if (p->i >= p->n || p->s[p->i] != ',') {
                fail(p, "Expecting ',' delimiter", p->i);
                return NULL;
            }
            uint32_t comma = p->i++;
            skip_ws(p);
            if (p->i < p->n && p->s[p->i] == close) {
                fail(p, object ? "Illegal trailing comma before end of object"
                               : "Illegal trailing comma before end of array", comma);
                return NULL;
            }
        }
    }
    p->depth--;
    vg_json *v = node(object ? J_OBJ : J_ARR);
    if (object) {
        v->u.object.items = members;
        v->u.object.n = n;
    } else {
        v->u.array.items = items;
        v->u.array.n = n;
    }
    return v;
}

static vg_json *parse_value(parser *p) {
    if (p->i >= p->n) {
        fail(p, "Expecting value", p->i);
        return NULL;
    }
    char c = p->s[p->i];
    if (c == '"') {
        p->i++;
        vg_json *v = node(J_STR);
        return parse_string(p, &v->u.text) ? v : NULL;
    }
    if (c == '{' || c == '[') return parse_container(p, c == '{');
    if (starts(p, "null")) {
        p->i += 4;
        return node(J_NULL);
    }
    if (starts(p, "true") || starts(p, "false")) {
        vg_json *v = node(J_BOOL);
        v->u.boolean = c == 't';
        p->i += c == 't' ? 4 : 5;
        return v;
    }
    static const struct {
        const char *word;
        double value;
    } specials[] = {{"NaN", NAN}, {"Infinity", INFINITY}, {"-Infinity", -INFINITY}};
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
        if (starts(p, specials[k].word)) {
            p->i += (uint32_t)strlen(specials[k].word);
            vg_json *v = node(J_FLOAT);
            v->u.number = specials[k].value;
            return v;
        }
    }
    vg_json *v = parse_number(p);
    if (v == NULL) fail(p, "Expecting value", p->i);
    return v;
}

vg_json *json_parse(vg_str text, const char **error) {
    parser p = {text.p, text.n, 0, NULL, 0};
    if (text.n >= 3 && memcmp(text.p, "\xEF\xBB\xBF", 3) == 0) {
        fail(&p, "Unexpected UTF-8 BOM (decode using utf-8-sig)", 0);
        *error = p.error;
        return NULL;
    }
    skip_ws(&p);
    vg_json *v = parse_value(&p);
    if (v != NULL) {
        skip_ws(&p);
        if (p.i != p.n) {
            fail(&p, "Extra data", p.i);
            v = NULL;
        }
    }
    if (v == NULL) *error = p.error ? p.error : "invalid JSON";
    return v;
}

vg_json *json_get(const vg_json *object, const char *key) {
    if (object == NULL || object->kind != J_OBJ) return NULL;
    for (uint32_t k = 0; k < object->u.object.n; k++)
        if (vg_eq(object->u.object.items[k].key, key)) return object->u.object.items[k].value;
    return NULL;
}

/* --- writing ------------------------------------------------------------------------------------------ */

/* Python's repr(float): the shortest digits that read back to the same double, in fixed notation when the
 * decimal exponent is in [-4, 16), else as d.ddde+XX. Out of line (as are the string writers) so that its
 * buffers stay out of the frame of write_json, which recurses once per level of nesting: inlined, 500
 * levels overflowed the 64 KiB stack. */
__attribute__((noinline)) static void put_float(vg_buf *b, double x) {
    if (isnan(x)) {
        buf_puts(b, "NaN");
        return;
    }
    if (isinf(x)) {
        buf_puts(b, x > 0 ? "Infinity" : "-Infinity");
        return;
    }
    if (x == 0) {
        buf_puts(b, signbit(x) ? "-0.0" : "0.0");
        return;
    }
    char text[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*e", precision - 1, x);
        if (strtod(text, NULL) == x) break;
    }
    /* text is [-]d[.ddd]e[+-]XX */
    const char *t = text;
    if (*t == '-') {
        buf_putc(b, '-');
        t++;
    }
    char digits[20];
    int nd = 0;
    for (; *t && *t != 'e'; t++)
        if (*t != '.') digits[nd++] = *t;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int exponent = atoi(t + 1);
    if (exponent < -4 || exponent >= 16) {
        buf_putc(b, digits[0]);
        if (nd > 1) {
            buf_putc(b, '.');
            buf_put(b, digits + 1, (uint32_t)(nd - 1));
        }
        buf_puts(b, exponent < 0 ? "e-" : "e+");
        int magnitude = exponent < 0 ? -exponent : exponent;
        if (magnitude < 10) buf_putc(b, '0');
        buf_putu(b, (uint64_t)magnitude);
        return;
    }
    int point = exponent + 1; /* digits before the decimal point */
    if (point <= 0) {
        buf_puts(b, "0.");
        for (int k = 0; k < -point; k++) buf_putc(b, '0');
        buf_put(b, digits, (uint32_t)nd);
    } else if (point >= nd) {
        buf_put(b, digits, (uint32_t)nd);
        for (int k = nd; k < point; k++) buf_putc(b, '0');
        buf_puts(b, ".0");
    } else {
        buf_put(b, digits, (uint32_t)point);
        buf_putc(b, '.');
        buf_put(b, digits + point, (uint32_t)(nd - point));
    }
}

/* A string as json.dumps(ensure_ascii=False) writes it. */
__attribute__((noinline)) static void put_string_unicode(vg_buf *b, vg_str s) {
    static const char hex[] = "0123456789abcdef";
    buf_putc(b, '"');
    uint32_t plain = 0;
    for (uint32_t i = 0; i < s.n; i++) {
        uint8_t c = (uint8_t)s.p[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        buf_put(b, s.p + plain, i - plain);
        plain = i + 1;
        switch (c) {
        case '"': buf_puts(b, "\\\""); break;
        case '\\': buf_puts(b, "\\\\"); break;
        case '\n': buf_puts(b, "\\n"); break;
        case '\r': buf_puts(b, "\\r"); break;
        case '\t': buf_puts(b, "\\t"); break;
        case '\b': buf_puts(b, "\\b"); break;
        case '\f': buf_puts(b, "\\f"); break;
        default: {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF], 0};
            buf_puts(b, u);
        }
        }
    }
    buf_put(b, s.p + plain, s.n - plain);
    buf_putc(b, '"');
}

static int key_cmp(const void *a, const void *b) {
    const vg_member *x = a, *y = b;
    uint32_t n = x->key.n < y->key.n ? x->key.n : y->key.n;
    int c = memcmp(x->key.p, y->key.p, n); /* UTF-8 byte order is code point order */
    return c ? c : (x->key.n > y->key.n) - (x->key.n < y->key.n);
}

/* A string or the digits of an integer. Out of line: the vg_str copies its calls need would otherwise sit
 * in the frame of the recursive write_json. */
__attribute__((noinline)) static void put_text(vg_buf *b, const vg_str *s, vg_kind kind, int canonical) {
    if (kind == J_INT) buf_str(b, *s);
    else if (canonical) put_string_unicode(b, *s);
    else json_quote(b, *s);
}

static void write_json(vg_buf *b, const vg_json *v, int canonical) {
    switch (v->kind) {
    case J_NULL: buf_puts(b, "null"); break;
    case J_BOOL: buf_puts(b, v->u.boolean ? "true" : "false"); break;
    case J_FLOAT: put_float(b, v->u.number); break;
    case J_INT:
    case J_STR: put_text(b, &v->u.text, v->kind, canonical); break;
    case J_ARR:
        buf_putc(b, '[');
        for (uint32_t k = 0; k < v->u.array.n; k++) {
            if (k) buf_puts(b, ", ");
            write_json(b, v->u.array.items[k], canonical);
        }
        buf_putc(b, ']');
        break;
    case J_OBJ: {
        uint32_t n = v->u.object.n;
        const vg_member *members = v->u.object.items;
        if (canonical && n > 1) {
            vg_member *sorted = vg_alloc(n * sizeof *sorted);
            memcpy(sorted, members, n * sizeof *sorted);
            qsort(sorted, n, sizeof *sorted, key_cmp);
            members = sorted;
        }
        buf_putc(b, '{');
        for (uint32_t k = 0; k < n; k++) {
            if (k) buf_puts(b, ", ");
            put_text(b, &members[k].key, J_STR, canonical);
            buf_puts(b, ": ");
            write_json(b, members[k].value, canonical);
        }
        buf_putc(b, '}');
        break;
    }
    }
}

void json_canonical(vg_buf *b, const vg_json *v) { write_json(b, v, 1); }

void json_ascii(vg_buf *b, const vg_json *v) { write_json(b, v, 0); }

vg_str json_canonical_str(const vg_json *v) {
    vg_buf b = {0};
    json_canonical(&b, v);
    return buf_done(&b);
}

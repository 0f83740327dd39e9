/* vigilo_sdk/schema.py in C: `schema_errors` and `schema_check` with the same messages in the same order.
 *
 * A message list is filled in the order Python's lists are, so a caller that only needs the first message
 * (anyOf / oneOf branches, `not`, `if`, `contains`) stops as soon as it has it: the result is the same as
 * computing everything and looking at the first entry, only faster.
 *
 * Python values map as follows: JSON integers are Python ints, kept as digit text in vg_json; JSON floats
 * are floats; true and false are bools, which `isinstance(x, int)` accepts for the count keywords
 * (minLength: true behaves as 1) but `_is_number` does not. Integer arithmetic stays exact as Python's is,
 * beyond 2**53 too: integers compare digit by digit, an integer and a float compare exactly (below), and
 * multipleOf of two integers is a long division. Only a quotient with a float goes through float(int).
 *
 * Where Python raises instead of answering, the native validator goes on: an integer beyond the float
 * range divided by a float (multipleOf: Python's OverflowError) is taken as infinity, and a $ref segment of
 * non-ASCII digits ("²", "٣") into an array does not resolve (Python's str.isdigit() accepts them, then
 * int() raises or indexes). Python's uncaught exceptions end its evaluation with a trap, which no native
 * result reproduces. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "re_engine.h"
#include "schema.h"

#define UNORDERED 2 /* a comparison with NaN */
/* Functions off the recursive path are kept out of line, so that each level of nesting costs the 64 KiB
 * wasm stack only the small frames of errors() and its dispatchers. */
#define NOINLINE __attribute__((noinline))

typedef struct sink {
    schema_messages list;
    uint32_t limit; /* 0: every message; else stop after this many */
} sink;

typedef struct active_ref {
    vg_str ref;
    const char *path;
    const struct active_ref *next;
} active_ref;

typedef struct validator {
    const vg_json *root;
    const active_ref *active; /* the ($ref, path) pairs being followed, against circular references */
    int depth, too_deep;
} validator;

static int full(const sink *out) { return out->limit && out->list.n >= out->limit; }

static int stop(const validator *v, const sink *out) { return v->too_deep || full(out); }

static int str_eq(vg_str a, vg_str b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }

static const vg_json *member(const vg_json *object, vg_str key) {
    if (object == NULL || object->kind != J_OBJ) return NULL;
    for (uint32_t k = 0; k < object->u.object.n; k++)
        if (str_eq(object->u.object.items[k].key, key)) return object->u.object.items[k].value;
    return NULL;
}

static int is_number(const vg_json *x) { return x && (x->kind == J_INT || x->kind == J_FLOAT); }

static int is_int(const vg_json *x) { return x && (x->kind == J_INT || x->kind == J_BOOL); } /* isinstance int */

static const vg_json *list_of(const vg_json *x) { return x && x->kind == J_ARR ? x : NULL; }

/* --- numbers --------------------------------------------------------------------------------------------- */

static vg_str int_text(const vg_json *x) {
    if (x->kind == J_BOOL) return vg_cstr(x->u.boolean ? "1" : "0");
    return x->u.text;
}

static int int_cmp(vg_str a, vg_str b) {
    int negative = a.p[0] == '-';
    if (negative != (b.p[0] == '-')) return negative ? -1 : 1;
    int c = a.n != b.n ? (a.n < b.n ? -1 : 1) : memcmp(a.p, b.p, a.n);
    c = (c > 0) - (c < 0);
    return negative ? -c : c;
}

/* The float nearest to an integer's digits (Python's float(int), which raises beyond the float range). */
static double int_double(vg_str digits) {
    char *copy = vg_alloc(digits.n + 1);
    memcpy(copy, digits.p, digits.n);
    copy[digits.n] = '\0';
    return strtod(copy, NULL);
}

static double to_double(const vg_json *x) { return x->kind == J_FLOAT ? x->u.number : int_double(int_text(x)); }

/* An integer against a float, exactly as Python compares them: rounding the integer keeps the order, and
 * when it ties with the float, the float is a whole number whose exact digits decide. */
static int int_float_cmp(vg_str n, double f) {
    if (isnan(f)) return UNORDERED;
    if (isinf(f)) return f > 0 ? -1 : 1;
    if (f == 0) return n.p[0] == '-' ? -1 : !(n.n == 1 && n.p[0] == '0');
    double d = int_double(n);
    if (d != f) return d < f ? -1 : 1;
    char *digits = vg_alloc(400);
    snprintf(digits, 400, "%.0f", f);
    return int_cmp(n, vg_cstr(digits));
}

/* -1, 0, 1, or UNORDERED; both are numbers or booleans (as integers). */
static int num_cmp(const vg_json *a, const vg_json *b) {
    if (a->kind != J_FLOAT && b->kind != J_FLOAT) return int_cmp(int_text(a), int_text(b));
    if (a->kind == J_FLOAT && b->kind == J_FLOAT) {
        double x = a->u.number, y = b->u.number;
        if (isnan(x) || isnan(y)) return UNORDERED;
        return (x > y) - (x < y);
    }
    if (b->kind == J_FLOAT) return int_float_cmp(int_text(a), b->u.number);
    int c = int_float_cmp(int_text(b), a->u.number);
    return c == UNORDERED ? c : -c;
}

/* A count (a length) against a count keyword, which may be any int or a bool. */
static int count_cmp(uint64_t n, const vg_json *limit) {
    vg_str t = int_text(limit);
    if (t.p[0] == '-') return 1;
    if (t.n > 19) return -1;
    uint64_t m = 0;
    for (uint32_t k = 0; k < t.n; k++) m = m * 10 + (uint64_t)(t.p[k] - '0');
    return (n > m) - (n < m);
}

/* value % step == 0 for integers (step > 0), by long division on the decimal digits. */
static int divides(vg_str step, vg_str value) {
    if (value.p[0] == '-') value = (vg_str){value.p + 1, value.n - 1};
    if (step.n <= 18) {
        uint64_t s = 0, r = 0;
        for (uint32_t k = 0; k < step.n; k++) s = s * 10 + (uint64_t)(step.p[k] - '0');
        for (uint32_t k = 0; k < value.n; k++) r = (r * 10 + (uint64_t)(value.p[k] - '0')) % s;
        return r == 0;
    }
    uint32_t width = step.n + 1; /* the remainder stays below step, so times 10 it fits in one more digit */
    uint8_t *r = vg_alloc(width), *s = vg_alloc(width);
    memset(r, 0, width);
    s[0] = 0;
    for (uint32_t k = 0; k < step.n; k++) s[k + 1] = (uint8_t)(step.p[k] - '0');
    for (uint32_t k = 0; k < value.n; k++) {
        memmove(r, r + 1, width - 1);
        r[width - 1] = (uint8_t)(value.p[k] - '0');
        while (memcmp(r, s, width) >= 0) {
            int borrow = 0;
            for (uint32_t i = width; i-- > 0;) {
                int d = r[i] - s[i] - borrow;
                borrow = d < 0;
                r[i] = (uint8_t)(d + 10 * borrow);
            }
        }
    }
    for (uint32_t k = 0; k < width; k++)
        if (r[k]) return 0;
    return 1;
}

/* _multiple(): exact for two integers, else a relative tolerance on the float quotient. */
static int multiple(const vg_json *value, const vg_json *step) {
    if (value->kind == J_INT && step->kind == J_INT) return divides(step->u.text, value->u.text);
    double quotient = to_double(value) / to_double(step);
    if (!isfinite(quotient)) return 0;
    return fabs(quotient - rint(quotient)) <= 1e-9 * fmax(1.0, fabs(quotient)); /* rint: round half even */
}

/* x > 0 and x <= 0 for a number: both are false for NaN. */
static int positive(const vg_json *x) {
    if (x->kind == J_FLOAT) return x->u.number > 0;
    return x->u.text.p[0] != '-' && !(x->u.text.n == 1 && x->u.text.p[0] == '0');
}

static int not_positive(const vg_json *x) { return x->kind == J_FLOAT ? x->u.number <= 0 : !positive(x); }

/* --- equality as _canon() sees it: 1 == 1.0, true != 1, deep for arrays and objects ------------------- */

static int canon_eq(const vg_json *a, const vg_json *b) {
    if (is_number(a) || is_number(b)) {
        if (!is_number(a) || !is_number(b)) return 0;
        /* json.loads gives every NaN the same float object, and Python's containers compare identity first */
        if (a->kind == J_FLOAT && b->kind == J_FLOAT && isnan(a->u.number) && isnan(b->u.number)) return 1;
        return num_cmp(a, b) == 0;
    }
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case J_BOOL: return a->u.boolean == b->u.boolean;
    case J_STR: return str_eq(a->u.text, b->u.text);
    case J_ARR:
        if (a->u.array.n != b->u.array.n) return 0;
        for (uint32_t k = 0; k < a->u.array.n; k++)
            if (!canon_eq(a->u.array.items[k], b->u.array.items[k])) return 0;
        return 1;
    case J_OBJ:
        if (a->u.object.n != b->u.object.n) return 0;
        for (uint32_t k = 0; k < a->u.object.n; k++) {
            const vg_json *other = member(b, a->u.object.items[k].key);
            if (other == NULL || !canon_eq(a->u.object.items[k].value, other)) return 0;
        }
        return 1;
    default: return 1; /* null */
    }
}

static uint32_t text_hash(vg_str s) {
    uint32_t h = 2166136261u;
    for (uint32_t k = 0; k < s.n; k++) h = (h ^ (uint8_t)s.p[k]) * 16777619u;
    return h;
}

/* Equal under canon_eq means equal hashes (numbers hash by their nearest float). */
static uint32_t canon_hash(const vg_json *x) {
    uint32_t h;
    switch (x->kind) {
    case J_BOOL: return 0x85ebca6bu + (uint32_t)x->u.boolean;
    case J_INT:
    case J_FLOAT: {
        double d = to_double(x);
        if (isnan(d)) return 7;
        if (d == 0) d = 0; /* -0.0 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        return (uint32_t)(bits ^ (bits >> 32)) * 0x9e3779b1u;
    }
    case J_STR: return text_hash(x->u.text);
    case J_ARR:
        h = 0x27d4eb2du;
        for (uint32_t k = 0; k < x->u.array.n; k++) h = h * 31u + canon_hash(x->u.array.items[k]);
        return h;
    case J_OBJ: /* in any key order */
        h = 0x165667b1u;
        for (uint32_t k = 0; k < x->u.object.n; k++)
            h += text_hash(x->u.object.items[k].key) * 0x9e3779b1u ^ canon_hash(x->u.object.items[k].value);
        return h;
    default: return 0x9e3779b9u;
    }
}

/* The first item equal to an earlier one: 1 with their indexes, 0 when all items are distinct. */
static int first_duplicate(const vg_json *array, uint32_t *first, uint32_t *second) {
    uint32_t n = array->u.array.n, cap = 16;
    while (cap < 2 * n) cap *= 2;
    uint32_t *slots = vg_alloc(cap * sizeof *slots); /* item index + 1; 0: empty */
    memset(slots, 0, cap * sizeof *slots);
    for (uint32_t j = 0; j < n; j++) {
        const vg_json *item = array->u.array.items[j];
        for (uint32_t s = canon_hash(item) & (cap - 1);; s = (s + 1) & (cap - 1)) {
            if (slots[s] == 0) {
                slots[s] = j + 1;
                break;
            }
            if (canon_eq(array->u.array.items[slots[s] - 1], item)) {
                *first = slots[s] - 1;
                *second = j;
                return 1;
            }
        }
    }
    return 0;
}

/* --- patterns -------------------------------------------------------------------------------------------- */

typedef struct compiled {
    vg_str source;
    re_prog *prog; /* NULL: refused */
    struct compiled *next;
} compiled;

#define PATTERN_BUCKETS 64
static compiled *patterns[PATTERN_BUCKETS];

void schema_begin(void) { memset(patterns, 0, sizeof patterns); }

/* _compile(): the program, or NULL for a pattern Python's `re` rejects or the engine does not support. */
static const re_prog *compile(vg_str source) {
    compiled **bucket = &patterns[text_hash(source) % PATTERN_BUCKETS];
    for (compiled *c = *bucket; c; c = c->next)
        if (str_eq(c->source, source)) return c->prog;
    compiled *c = vg_alloc(sizeof *c);
    const char *error = NULL;
    c->source = source;
    c->prog = re_compile(source.p, source.n, 0, &error);
    c->next = *bucket;
    *bucket = c;
    return c->prog;
}

/* re.search(); re_exec's -1 (out of memory) cannot happen, as vg_alloc traps instead of failing. */
static int search(const re_prog *prog, vg_str text) {
    size_t start_cp, end_cp, start_byte, end_byte;
    return re_exec(prog, text.p, text.n, 0, &start_cp, &end_cp, &start_byte, &end_byte) == 1;
}

/* --- messages -------------------------------------------------------------------------------------------- */

/* repr() of a JSON value as the Python value it loads as. */
static void put_repr(vg_buf *b, const vg_json *x) {
    switch (x->kind) {
    case J_NULL: buf_puts(b, "None"); break;
    case J_BOOL: buf_puts(b, x->u.boolean ? "True" : "False"); break;
    case J_INT: buf_str(b, x->u.text); break;
    case J_FLOAT:
        if (isnan(x->u.number)) buf_puts(b, "nan");
        else if (isinf(x->u.number)) buf_puts(b, x->u.number > 0 ? "inf" : "-inf");
        else json_canonical(b, x);
        break;
    case J_STR: py_repr(b, x->u.text); break;
    case J_ARR:
        buf_putc(b, '[');
        for (uint32_t k = 0; k < x->u.array.n; k++) {
            if (k) buf_puts(b, ", ");
            put_repr(b, x->u.array.items[k]);
        }
        buf_putc(b, ']');
        break;
    case J_OBJ:
        buf_putc(b, '{');
        for (uint32_t k = 0; k < x->u.object.n; k++) {
            if (k) buf_puts(b, ", ");
            py_repr(b, x->u.object.items[k].key);
            buf_puts(b, ": ");
            put_repr(b, x->u.object.items[k].value);
        }
        buf_putc(b, '}');
        break;
    }
}

/* A message as the Python f-string writes it, "<prefix>: " then `fmt` with
 *   %s a C string   %S a vg_str   %r repr() of a vg_str   %u an unsigned   %v _show() of a JSON value
 *   %i str() of an int-like JSON value (True / False for booleans)   %R repr() of a JSON value */
static vg_str vformat(vg_str prefix, const char *fmt, va_list ap) {
    vg_buf b = {0};
    buf_str(&b, prefix);
    buf_puts(&b, ": ");
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            buf_putc(&b, *f);
            continue;
        }
        switch (*++f) {
        case 's': buf_puts(&b, va_arg(ap, const char *)); break;
        case 'S': buf_str(&b, va_arg(ap, vg_str)); break;
        case 'r': py_repr(&b, va_arg(ap, vg_str)); break;
        case 'u': buf_putu(&b, va_arg(ap, uint32_t)); break;
        case 'v': cfg_show(&b, va_arg(ap, const vg_json *)); break;
        case 'R': put_repr(&b, va_arg(ap, const vg_json *)); break;
        case 'i': {
            const vg_json *x = va_arg(ap, const vg_json *);
            if (x->kind == J_BOOL) buf_puts(&b, x->u.boolean ? "True" : "False");
            else buf_str(&b, x->u.text);
            break;
        }
        default: buf_putc(&b, *f); break;
        }
    }
    return buf_done(&b);
}

static void push(sink *out, vg_str message) {
    schema_messages *list = &out->list;
    if (list->n == list->cap) {
        uint32_t cap = list->cap ? 2 * list->cap : 8;
        vg_str *grown = vg_alloc(cap * sizeof *grown);
        if (list->n) memcpy(grown, list->items, list->n * sizeof *grown);
        list->items = grown;
        list->cap = cap;
    }
    list->items[list->n++] = message;
}

/* A validation message at a JSON path ("$.a[0]"). */
NOINLINE static void add(sink *out, const char *path, const char *fmt, ...) {
    if (full(out)) return;
    va_list ap;
    va_start(ap, fmt);
    push(out, vformat(vg_cstr(path), fmt, ap));
    va_end(ap);
}

/* minItems/maxItems, minProperties/maxProperties: `count` members against the schema's two limits. */
static void count_bounds(sink *out, const char *path, uint32_t count, const vg_json *schema, const char *min_key,
                         const char *max_key, const char *noun) {
    const vg_json *least = json_get(schema, min_key), *most = json_get(schema, max_key);
    if (is_int(least) && count_cmp(count, least) < 0)
        add(out, path, "has %u %s, fewer than the minimum of %i", count, noun, least);
    if (is_int(most) && count_cmp(count, most) > 0)
        add(out, path, "has %u %s, more than the maximum of %i", count, noun, most);
}

/* A schema problem at a schema location ("#/properties/a"). */
NOINLINE static void note(sink *out, const vg_str *where, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    push(out, vformat(*where, fmt, ap));
    va_end(ap);
}

/* problem.split(': ', 1)[-1] */
static vg_str after_colon(vg_str message) {
    for (uint32_t k = 0; k + 1 < message.n; k++)
        if (message.p[k] == ':' && message.p[k + 1] == ' ') return (vg_str){message.p + k + 2, message.n - k - 2};
    return message;
}

static int identifier(vg_str key) {
    if (key.n == 0) return 0;
    for (uint32_t k = 0; k < key.n; k++) {
        char c = key.p[k];
        int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!letter && !(k > 0 && c >= '0' && c <= '9')) return 0;
    }
    return 1;
}

/* Paths are C strings: a key with a NUL character is written as \u0000, so none contains one. */
NOINLINE static const char *key_path(const char *path, const vg_member *item) {
    vg_buf b = {0};
    buf_puts(&b, path);
    if (identifier(item->key)) {
        buf_putc(&b, '.');
        buf_str(&b, item->key);
    } else {
        vg_json text = {.kind = J_STR, .u.text = item->key};
        buf_putc(&b, '[');
        json_canonical(&b, &text);
        buf_putc(&b, ']');
    }
    buf_putc(&b, '\0');
    return b.p;
}

NOINLINE static const char *index_path(const char *path, uint32_t index) {
    vg_buf b = {0};
    buf_puts(&b, path);
    buf_putc(&b, '[');
    buf_putu(&b, index);
    buf_puts(&b, "]");
    buf_putc(&b, '\0');
    return b.p;
}

/* --- $ref ------------------------------------------------------------------------------------------------ */

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* s with every "~<digit>" replaced by `to` (one of the pointer escapes). */
static vg_str unescape(vg_str s, char digit, char to) {
    vg_buf b = {0};
    for (uint32_t k = 0; k < s.n; k++) {
        if (s.p[k] == '~' && k + 1 < s.n && s.p[k + 1] == digit) {
            buf_putc(&b, to);
            k++;
        } else {
            buf_putc(&b, s.p[k]);
        }
    }
    return buf_done(&b);
}

/* _unquote() (each %XX is the code point XX, not a UTF-8 byte), then ~1 -> "/", then ~0 -> "~". */
static vg_str pointer_part(const char *p, uint32_t n) {
    vg_buf unquoted = {0};
    for (uint32_t k = 0; k < n; k++) {
        if (p[k] == '%' && k + 2 < n && hex_digit(p[k + 1]) >= 0 && hex_digit(p[k + 2]) >= 0) {
            utf8_put(&unquoted, (uint32_t)(hex_digit(p[k + 1]) * 16 + hex_digit(p[k + 2])));
            k += 2;
        } else {
            buf_putc(&unquoted, p[k]);
        }
    }
    return unescape(unescape(buf_done(&unquoted), '1', '/'), '0', '~');
}

static const vg_json *pointer_step(const vg_json *target, vg_str part) {
    if (target->kind == J_OBJ) return member(target, part);
    if (target->kind != J_ARR || part.n == 0) return NULL;
    uint64_t index = 0;
    for (uint32_t k = 0; k < part.n; k++) {
        if (part.p[k] < '0' || part.p[k] > '9') return NULL;
        index = index * 10 + (uint64_t)(part.p[k] - '0');
        if (index >= target->u.array.n) index = target->u.array.n; /* out of range, and stays so */
    }
    return index < target->u.array.n ? target->u.array.items[index] : NULL;
}

/* _pointer(): the target of a local reference ("#", "#/a/b"), or NULL when it does not resolve. */
static const vg_json *pointer(const vg_json *root, vg_str ref) {
    if (ref.n == 0 || ref.p[0] != '#') return NULL;
    if (vg_eq(ref, "#") || vg_eq(ref, "#/")) return root;
    if (ref.n < 2 || ref.p[1] != '/') return NULL;
    const vg_json *target = root;
    uint32_t start = 2;
    for (;;) {
        uint32_t end = start;
        while (end < ref.n && ref.p[end] != '/') end++;
        target = pointer_step(target, pointer_part(ref.p + start, end - start));
        if (target == NULL || end == ref.n) return target;
        start = end + 1;
    }
}

/* --- validation ------------------------------------------------------------------------------------------- */

static void errors(validator *v, sink *out, const vg_json *value, const vg_json *schema, const char *path);

static int valid(validator *v, const vg_json *value, const vg_json *schema, const char *path) {
    sink probe = {{0}, 1};
    errors(v, &probe, value, schema, path);
    return probe.list.n == 0;
}

static void ref_errors(validator *v, sink *out, const vg_json *value, vg_str ref, const char *path) {
    const vg_json *target = pointer(v->root, ref);
    if (target == NULL) {
        add(out, path, "cannot resolve $ref %r", ref);
        return;
    }
    for (const active_ref *a = v->active; a; a = a->next) {
        if (str_eq(a->ref, ref) && strcmp(a->path, path) == 0) {
            add(out, path, "circular $ref %r", ref);
            return;
        }
    }
    active_ref here = {ref, path, v->active};
    v->active = &here;
    errors(v, out, value, target, path);
    v->active = here.next;
}

static int has_type(const vg_json *value, const vg_json *name) {
    if (name->kind != J_STR) return 0;
    vg_str t = name->u.text;
    switch (value->kind) {
    case J_NULL: return vg_eq(t, "null");
    case J_BOOL: return vg_eq(t, "boolean");
    case J_INT: return vg_eq(t, "integer") || vg_eq(t, "number");
    case J_FLOAT: /* 1.0 is an integer in JSON Schema */
        if (vg_eq(t, "integer")) return isfinite(value->u.number) && floor(value->u.number) == value->u.number;
        return vg_eq(t, "number");
    case J_STR: return vg_eq(t, "string");
    case J_ARR: return vg_eq(t, "array");
    default: return vg_eq(t, "object");
    }
}

/* "type": 1 when the value has one of the types (or there is no usable list), else 0 after the message. */
NOINLINE static int type_ok(sink *out, const vg_json *value, const vg_json *types, const char *path) {
    const vg_json *const *names = &types;
    uint32_t n = 1;
    if (types == NULL || (types->kind != J_STR && types->kind != J_ARR)) return 1;
    if (types->kind == J_ARR) {
        names = (const vg_json *const *)types->u.array.items;
        n = types->u.array.n;
    }
    if (n == 0) return 1;
    for (uint32_t k = 0; k < n; k++)
        if (has_type(value, names[k])) return 1;
    vg_buf listed = {0};
    for (uint32_t k = 0; k < n; k++) {
        if (k) buf_puts(&listed, ", ");
        put_repr(&listed, names[k]);
    }
    add(out, path, "%v is not of type %S", value, buf_done(&listed));
    return 0;
}

NOINLINE static void enum_const_errors(sink *out, const vg_json *value, const vg_json *schema, const char *path) {
    const vg_json *options = list_of(json_get(schema, "enum"));
    if (options) {
        uint32_t k = 0;
        while (k < options->u.array.n && !canon_eq(value, options->u.array.items[k])) k++;
        if (k == options->u.array.n) add(out, path, "%v is not one of %v", value, options);
    }
    const vg_json *constant = json_get(schema, "const");
    if (constant && !canon_eq(value, constant)) add(out, path, "%v is not equal to the constant %v", value, constant);
}

NOINLINE static void string_errors(sink *out, const vg_json *value, const vg_json *schema, const char *path) {
    uint32_t length = utf8_len(value->u.text);
    const vg_json *least = json_get(schema, "minLength"), *most = json_get(schema, "maxLength");
    if (is_int(least) && count_cmp(length, least) < 0)
        add(out, path, "%v is shorter than %i characters", value, least);
    if (is_int(most) && count_cmp(length, most) > 0) add(out, path, "%v is longer than %i characters", value, most);
    const vg_json *pattern = json_get(schema, "pattern");
    if (pattern && pattern->kind == J_STR) {
        const re_prog *prog = compile(pattern->u.text);
        if (prog == NULL) add(out, path, "invalid pattern %r in schema", pattern->u.text);
        else if (!search(prog, value->u.text)) add(out, path, "%v does not match %r", value, pattern->u.text);
    }
}

NOINLINE static void number_errors(sink *out, const vg_json *value, const vg_json *schema, const char *path) {
    const vg_json *minimum = json_get(schema, "minimum"), *maximum = json_get(schema, "maximum");
    const vg_json *xmin = json_get(schema, "exclusiveMinimum"), *xmax = json_get(schema, "exclusiveMaximum");
    if (xmin && xmin->kind == J_BOOL && xmin->u.boolean && is_number(minimum)) { /* draft-04 boolean form */
        xmin = minimum;
        minimum = NULL;
    }
    if (xmax && xmax->kind == J_BOOL && xmax->u.boolean && is_number(maximum)) {
        xmax = maximum;
        maximum = NULL;
    }
    if (is_number(minimum) && num_cmp(value, minimum) == -1)
        add(out, path, "%v is less than the minimum of %v", value, minimum);
    if (is_number(maximum) && num_cmp(value, maximum) == 1)
        add(out, path, "%v is greater than the maximum of %v", value, maximum);
    int c;
    if (is_number(xmin) && ((c = num_cmp(value, xmin)) == -1 || c == 0))
        add(out, path, "%v is less than or equal to the exclusive minimum of %v", value, xmin);
    if (is_number(xmax) && ((c = num_cmp(value, xmax)) == 1 || c == 0))
        add(out, path, "%v is greater than or equal to the exclusive maximum of %v", value, xmax);
    const vg_json *step = json_get(schema, "multipleOf");
    if (is_number(step) && positive(step) && !multiple(value, step))
        add(out, path, "%v is not a multiple of %v", value, step);
}

/* required, dependentRequired, minProperties, maxProperties */
NOINLINE static void count_errors(sink *out, const vg_json *value, const vg_json *schema, const char *path) {
    const vg_json *required = list_of(json_get(schema, "required"));
    for (uint32_t k = 0; required && k < required->u.array.n; k++) {
        const vg_json *name = required->u.array.items[k];
        if (name->kind == J_STR && !member(value, name->u.text))
            add(out, path, "%r is a required property", name->u.text);
    }
    const vg_json *dependent = json_get(schema, "dependentRequired");
    for (uint32_t k = 0; dependent && dependent->kind == J_OBJ && k < dependent->u.object.n; k++) {
        vg_str name = dependent->u.object.items[k].key;
        const vg_json *needs = list_of(dependent->u.object.items[k].value);
        if (!member(value, name) || !needs) continue;
        for (uint32_t i = 0; i < needs->u.array.n; i++) {
            const vg_json *need = needs->u.array.items[i];
            if (need->kind == J_STR && !member(value, need->u.text))
                add(out, path, "%r is required when %r is present", need->u.text, name);
        }
    }
    count_bounds(out, path, value->u.object.n, schema, "minProperties", "maxProperties", "properties");
}

NOINLINE static void renamed(sink *out, const sink *problems, vg_str key, const char *path) {
    for (uint32_t k = 0; k < problems->list.n; k++)
        add(out, path, "property name %r is invalid (%S)", key, after_colon(problems->list.items[k]));
}

static void property_name_errors(validator *v, sink *out, const vg_member *item, const vg_json *names,
                                 const char *path) {
    vg_json *text = vg_alloc(sizeof *text);
    text->kind = J_STR;
    text->u.text = item->key;
    sink problems = {{0}, out->limit ? out->limit - out->list.n : 0};
    errors(v, &problems, text, names, path);
    renamed(out, &problems, item->key, path);
}

/* One property of an object: propertyNames, properties, patternProperties, additionalProperties. */
static void property_errors(validator *v, sink *out, const vg_member *item, const vg_json *schema, const char *path) {
    const vg_json *names = json_get(schema, "propertyNames");
    if (names && names->kind != J_NULL) property_name_errors(v, out, item, names, path);
    if (stop(v, out)) return;
    const char *where = key_path(path, item);
    int matched = 0;
    const vg_json *sub = member(json_get(schema, "properties"), item->key);
    if (sub) {
        matched = 1;
        errors(v, out, item->value, sub, where);
    }
    const vg_json *patterns = json_get(schema, "patternProperties");
    for (uint32_t k = 0; patterns && patterns->kind == J_OBJ && k < patterns->u.object.n; k++) {
        if (stop(v, out)) return;
        const re_prog *prog = compile(patterns->u.object.items[k].key);
        if (prog == NULL || !search(prog, item->key)) continue;
        matched = 1;
        errors(v, out, item->value, patterns->u.object.items[k].value, where);
    }
    if (matched || stop(v, out)) return;
    const vg_json *additional = json_get(schema, "additionalProperties");
    if (additional && additional->kind == J_BOOL && !additional->u.boolean)
        add(out, path, "additional property %r is not allowed", item->key);
    else if (additional) errors(v, out, item->value, additional, where);
}

NOINLINE static void contains_counts(sink *out, uint32_t hits, const vg_json *schema, const char *path) {
    static const vg_json one = {.kind = J_INT, .u.text = {"1", 1}};
    const vg_json *least = json_get(schema, "minContains"), *most = json_get(schema, "maxContains");
    if (least == NULL) least = &one;
    if (is_int(least) && count_cmp(hits, least) < 0) {
        if (count_cmp(1, least) == 0) add(out, path, "no item matches the 'contains' schema");
        else add(out, path, "%u items match the 'contains' schema, fewer than %i", hits, least);
    }
    if (is_int(most) && count_cmp(hits, most) > 0)
        add(out, path, "%u items match the 'contains' schema, more than %i", hits, most);
}

static void contains_errors(validator *v, sink *out, const vg_json *value, const vg_json *schema, const char *path) {
    const vg_json *contains = json_get(schema, "contains");
    uint32_t hits = 0;
    for (uint32_t k = 0; k < value->u.array.n; k++) {
        hits += (uint32_t)valid(v, value->u.array.items[k], contains, path);
        if (v->too_deep) return;
    }
    contains_counts(out, hits, schema, path);
}

static void items_errors(validator *v, sink *out, const vg_json *value, const vg_json *schema, const char *path) {
    const vg_json *items = json_get(schema, "items"), *prefix = json_get(schema, "prefixItems"), *rest = items;
    if (items && items->kind == J_ARR) { /* draft-07 tuple form */
        prefix = items;
        rest = json_get(schema, "additionalItems");
    }
    uint32_t n_prefix = prefix && prefix->kind == J_ARR ? prefix->u.array.n : 0;
    uint32_t count = value->u.array.n;
    for (uint32_t k = 0; k < count && !stop(v, out); k++) {
        const vg_json *item = value->u.array.items[k];
        if (k < n_prefix) {
            errors(v, out, item, prefix->u.array.items[k], index_path(path, k));
        } else if (rest && rest->kind == J_BOOL) {
            if (rest->u.boolean) continue;
            add(out, path, "has %u items, but only %u are allowed", count, n_prefix);
            break;
        } else if (rest && rest->kind != J_NULL) {
            errors(v, out, item, rest, index_path(path, k));
        }
    }
}

/* minItems, maxItems, uniqueItems */
NOINLINE static void size_errors(sink *out, const vg_json *value, const vg_json *schema, const char *path) {
    uint32_t count = value->u.array.n;
    count_bounds(out, path, count, schema, "minItems", "maxItems", "items");
    const vg_json *unique = json_get(schema, "uniqueItems");
    uint32_t first, second;
    if (unique && unique->kind == J_BOOL && unique->u.boolean && first_duplicate(value, &first, &second)) {
        const vg_json *item = value->u.array.items[second];
        add(out, path, "items %u and %u are equal (%v); items must be unique", first, second, item);
    }
}

/* _why(): the first message of each of the first three failing branches. */
NOINLINE static vg_str why(const vg_str *firsts, uint32_t branches) {
    vg_buf b = {0};
    buf_puts(&b, " (");
    for (uint32_t k = 0; k < branches && k < 3; k++) {
        if (k) buf_puts(&b, "; ");
        buf_putc(&b, '#');
        buf_putu(&b, k);
        buf_puts(&b, ": ");
        buf_str(&b, after_colon(firsts[k]));
    }
    buf_puts(&b, branches > 3 ? "; ...)" : ")");
    return buf_done(&b);
}

/* The first message of a branch in *first; 0 when the value is valid under it. */
static int branch_fails(validator *v, const vg_json *value, const vg_json *schema, const char *path, vg_str *first) {
    sink branch = {{0}, 1};
    errors(v, &branch, value, schema, path);
    if (branch.list.n) *first = branch.list.items[0];
    return branch.list.n != 0;
}

static void any_of_errors(validator *v, sink *out, const vg_json *value, const vg_json *list, const char *path) {
    uint32_t n = list->u.array.n;
    vg_str *firsts = vg_alloc(4 * sizeof *firsts); /* the first three branches, then a scratch slot */
    for (uint32_t k = 0; k < n; k++) {
        int fails = branch_fails(v, value, list->u.array.items[k], path, &firsts[k < 3 ? k : 3]);
        if (v->too_deep || !fails) return;
    }
    add(out, path, "%v is not valid under any of the anyOf schemas%S", value, why(firsts, n));
}

NOINLINE static void one_of_message(sink *out, const vg_json *value, const vg_str *firsts, const uint32_t *passing,
                                    uint32_t n, const char *path) {
    uint32_t count = 0;
    vg_buf indexes = {0};
    buf_putc(&indexes, '[');
    for (uint32_t k = 0; k < n; k++) {
        if (!passing[k]) continue;
        if (count++) buf_puts(&indexes, ", ");
        buf_putu(&indexes, k);
    }
    buf_putc(&indexes, ']');
    if (count == 0) add(out, path, "%v is not valid under any of the oneOf schemas%S", value, why(firsts, n));
    else if (count > 1)
        add(out, path, "%v is valid under more than one oneOf schema (indexes %S)", value, buf_done(&indexes));
}

static void one_of_errors(validator *v, sink *out, const vg_json *value, const vg_json *list, const char *path) {
    uint32_t n = list->u.array.n;
    vg_str *firsts = vg_alloc(4 * sizeof *firsts);
    uint32_t *passing = vg_alloc(n * sizeof *passing);
    for (uint32_t k = 0; k < n; k++) {
        passing[k] = !branch_fails(v, value, list->u.array.items[k], path, &firsts[k < 3 ? k : 3]);
        if (v->too_deep) return;
    }
    one_of_message(out, value, firsts, passing, n, path);
}

NOINLINE static void not_message(sink *out, const vg_json *value, const char *path) {
    add(out, path, "%v must not be valid under the 'not' schema", value);
}

/* allOf, anyOf, oneOf, not, if / then / else */
static void logic_errors(validator *v, sink *out, const vg_json *value, const vg_json *schema, const char *path) {
    const vg_json *all = list_of(json_get(schema, "allOf"));
    for (uint32_t k = 0; all && k < all->u.array.n && !stop(v, out); k++)
        errors(v, out, value, all->u.array.items[k], path);
    const vg_json *any = list_of(json_get(schema, "anyOf")), *one = list_of(json_get(schema, "oneOf"));
    if (!stop(v, out) && any && any->u.array.n) any_of_errors(v, out, value, any, path);
    if (!stop(v, out) && one && one->u.array.n) one_of_errors(v, out, value, one, path);
    const vg_json *not = json_get(schema, "not");
    if (!stop(v, out) && not && valid(v, value, not, path) && !v->too_deep) not_message(out, value, path);
    const vg_json *condition = json_get(schema, "if");
    if (stop(v, out) || condition == NULL) return;
    const vg_json *branch = json_get(schema, valid(v, value, condition, path) ? "then" : "else");
    if (branch && !v->too_deep) errors(v, out, value, branch, path);
}

/* The keywords of one object schema, in the order of _Validator.errors. */
static void keyword_errors(validator *v, sink *out, const vg_json *value, const vg_json *schema, const char *path) {
    const vg_json *ref = json_get(schema, "$ref");
    if (ref && ref->kind == J_STR) ref_errors(v, out, value, ref->u.text, path);
    if (stop(v, out) || !type_ok(out, value, json_get(schema, "type"), path)) return;
    enum_const_errors(out, value, schema, path);
    if (value->kind == J_OBJ) {
        count_errors(out, value, schema, path);
        for (uint32_t k = 0; k < value->u.object.n && !stop(v, out); k++)
            property_errors(v, out, &value->u.object.items[k], schema, path);
    } else if (value->kind == J_ARR) {
        size_errors(out, value, schema, path);
        if (!stop(v, out)) items_errors(v, out, value, schema, path);
        if (!stop(v, out) && json_get(schema, "contains")) contains_errors(v, out, value, schema, path);
    } else if (value->kind == J_STR) {
        string_errors(out, value, schema, path);
    } else if (is_number(value)) {
        number_errors(out, value, schema, path);
    }
    if (!stop(v, out)) logic_errors(v, out, value, schema, path);
}

static void errors(validator *v, sink *out, const vg_json *value, const vg_json *schema, const char *path) {
    if (schema->kind == J_BOOL) {
        if (!schema->u.boolean) add(out, path, "no value is allowed here (found %v)", value);
        return;
    }
    if (schema->kind != J_OBJ || schema->u.object.n == 0) return;
    if (v->depth >= SCHEMA_MAX_DEPTH) {
        v->too_deep = 1;
        return;
    }
    v->depth++;
    keyword_errors(v, out, value, schema, path);
    v->depth--;
}

int schema_errors(const vg_json *instance, const vg_json *schema, schema_messages *out) {
    validator v = {schema, NULL, 0, 0};
    sink all = {{0}, 0};
    errors(&v, &all, instance, schema, "$");
    *out = all.list;
    return v.too_deep ? -1 : 0;
}

/* --- checking the schema itself ------------------------------------------------------------------------- */

typedef struct checker {
    const vg_json *root;
    sink *out;
    int depth, too_deep;
} checker;

static const char *const TYPES[] = {"null", "boolean", "integer", "number", "string", "array", "object", NULL};
static const char *const SCHEMA_MAPS[] = {"properties", "patternProperties", "$defs", "definitions",
                                          "dependentSchemas", NULL};
static const char *const SCHEMA_LISTS[] = {"allOf", "anyOf", "oneOf", "prefixItems", NULL};
static const char *const SCHEMA_ONE[] = {"additionalProperties", "additionalItems", "propertyNames", "contains",
                                         "not", "if", "then", "else", NULL};
static const char *const COUNTS[] = {"minLength", "maxLength", "minItems", "maxItems", "minProperties",
                                     "maxProperties", "minContains", "maxContains", NULL};
static const char *const BOUNDS[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", NULL};

/* Schema locations: f"{at}/{index}" */
NOINLINE static const vg_str *sub_index(const vg_str *at, uint32_t index) {
    vg_buf b = {0};
    buf_str(&b, *at);
    buf_putc(&b, '/');
    buf_putu(&b, index);
    vg_str *out = vg_alloc(sizeof *out);
    *out = buf_done(&b);
    return out;
}

/* f"{at}/{key}" with ~ and / escaped as ~0 and ~1 (a key may hold any character, NUL too) */
NOINLINE static const vg_str *sub_path(const vg_str *at, vg_str key) {
    vg_buf b = {0};
    buf_str(&b, *at);
    buf_putc(&b, '/');
    for (uint32_t k = 0; k < key.n; k++) {
        if (key.p[k] == '~') buf_puts(&b, "~0");
        else if (key.p[k] == '/') buf_puts(&b, "~1");
        else buf_putc(&b, key.p[k]);
    }
    vg_str *out = vg_alloc(sizeof *out);
    *out = buf_done(&b);
    return out;
}

static const vg_str *sub_key(const vg_str *at, const char *key) { return sub_path(at, vg_cstr(key)); }

static void check(checker *c, const vg_json *schema, const vg_str *where);

NOINLINE static void check_types(checker *c, const vg_json *types, const vg_str *at) {
    const vg_str *where = sub_key(at, "type");
    const vg_json *const *names = &types;
    uint32_t n = 1, k = 0;
    if (types->kind == J_ARR) {
        names = (const vg_json *const *)types->u.array.items;
        n = types->u.array.n;
    }
    while (k < n && names[k]->kind == J_STR) k++;
    if ((types->kind != J_STR && types->kind != J_ARR) || n == 0 || k < n) {
        note(c->out, where, "must be a type name or a non-empty list of type names");
        return;
    }
    for (k = 0; k < n; k++) {
        const char *const *t = TYPES;
        while (*t && !vg_eq(names[k]->u.text, *t)) t++;
        if (*t == NULL)
            note(c->out, where, "unknown type %r (known: null, boolean, integer, number, string, array, object)",
                 names[k]->u.text);
    }
}

/* The keywords that are not subschemas: type, required, enum, pattern, counts, bounds, multipleOf,
 * uniqueItems, $ref. */
NOINLINE static void check_values(checker *c, const vg_json *schema, const vg_str *at) {
    const vg_json *x;
    if ((x = json_get(schema, "type"))) check_types(c, x, at);
    if ((x = json_get(schema, "required"))) {
        uint32_t k = 0;
        while (x->kind == J_ARR && k < x->u.array.n && x->u.array.items[k]->kind == J_STR) k++;
        if (x->kind != J_ARR || k < x->u.array.n)
            note(c->out, sub_key(at, "required"), "must be a list of property names (strings)");
    }
    if ((x = json_get(schema, "enum")) && x->kind != J_ARR) note(c->out, sub_key(at, "enum"), "must be a list");
    if ((x = json_get(schema, "pattern"))) {
        if (x->kind != J_STR) note(c->out, sub_key(at, "pattern"), "must be a string");
        else if (compile(x->u.text) == NULL)
            note(c->out, sub_key(at, "pattern"), "%r is not a valid regular expression", x->u.text);
    }
    for (const char *const *key = COUNTS; *key; key++)
        if ((x = json_get(schema, *key)) && (x->kind != J_INT || x->u.text.p[0] == '-'))
            note(c->out, sub_key(at, *key), "must be a non-negative integer, not %v", x);
    for (const char *const *key = BOUNDS; *key; key++)
        if ((x = json_get(schema, *key)) && !is_number(x) && x->kind != J_BOOL)
            note(c->out, sub_key(at, *key), "must be a number, not %v", x);
    if ((x = json_get(schema, "multipleOf")) && (!is_number(x) || not_positive(x)))
        note(c->out, sub_key(at, "multipleOf"), "must be a number greater than 0, not %v", x);
    if ((x = json_get(schema, "uniqueItems")) && x->kind != J_BOOL)
        note(c->out, sub_key(at, "uniqueItems"), "must be a boolean");
    if ((x = json_get(schema, "$ref"))) {
        if (x->kind != J_STR) note(c->out, sub_key(at, "$ref"), "must be a string");
        else if (pointer(c->root, x->u.text) == NULL)
            note(c->out, sub_key(at, "$ref"), "%r does not resolve (only local '#/...' references are supported)",
                 x->u.text);
    }
}

static void check_map(checker *c, const char *key, const vg_json *mapping, const vg_str *at) {
    const vg_str *where = sub_key(at, key);
    if (mapping->kind != J_OBJ) {
        note(c->out, where, "must be an object mapping names to schemas");
        return;
    }
    int patterns = strcmp(key, "patternProperties") == 0;
    for (uint32_t k = 0; k < mapping->u.object.n && !c->too_deep; k++) {
        const vg_member *item = &mapping->u.object.items[k];
        if (patterns && compile(item->key) == NULL)
            note(c->out, where, "%r is not a valid regular expression", item->key);
        check(c, item->value, sub_path(where, item->key));
    }
}

static void check_list(checker *c, const char *key, const vg_json *children, const vg_str *at) {
    const vg_str *where = sub_key(at, key);
    if (children->kind != J_ARR || (children->u.array.n == 0 && strcmp(key, "prefixItems") != 0)) {
        note(c->out, where, "must be a non-empty list of schemas");
        return;
    }
    for (uint32_t k = 0; k < children->u.array.n && !c->too_deep; k++)
        check(c, children->u.array.items[k], sub_index(where, k));
}

static void check_schemas(checker *c, const vg_json *schema, const vg_str *at) {
    const vg_json *x;
    for (const char *const *key = SCHEMA_MAPS; *key; key++)
        if ((x = json_get(schema, *key))) check_map(c, *key, x, at);
    for (const char *const *key = SCHEMA_LISTS; *key; key++)
        if ((x = json_get(schema, *key))) check_list(c, *key, x, at);
    for (const char *const *key = SCHEMA_ONE; *key; key++)
        if ((x = json_get(schema, *key))) check(c, x, sub_key(at, *key));
    if ((x = json_get(schema, "items"))) {
        const vg_str *where = sub_key(at, "items");
        if (x->kind != J_ARR) check(c, x, where);
        for (uint32_t k = 0; x->kind == J_ARR && k < x->u.array.n && !c->too_deep; k++)
            check(c, x->u.array.items[k], sub_index(where, k));
    }
}

NOINLINE static void not_a_schema(checker *c, const vg_json *schema, const vg_str *where) {
    note(c->out, where, "a schema must be an object or a boolean, not %v", schema);
}

NOINLINE static const vg_str *stripped(const vg_str *where) { /* where.rstrip("/") */
    vg_str *at = vg_alloc(sizeof *at);
    *at = *where;
    while (at->n && at->p[at->n - 1] == '/') at->n--;
    return at;
}

static void check(checker *c, const vg_json *schema, const vg_str *where) {
    if (schema->kind == J_BOOL || c->too_deep) return;
    if (schema->kind != J_OBJ) {
        not_a_schema(c, schema, where);
        return;
    }
    if (c->depth >= SCHEMA_MAX_DEPTH) {
        c->too_deep = 1;
        return;
    }
    c->depth++;
    const vg_str *at = stripped(where);
    check_values(c, schema, at);
    check_schemas(c, schema, at);
    c->depth--;
}

int schema_check(const vg_json *schema, schema_messages *out) {
    static const vg_str root = {"#", 1};
    sink all = {{0}, 0};
    checker c = {schema, &all, 0, 0};
    check(&c, schema, &root);
    *out = all.list;
    return c.too_deep ? -1 : 0;
}

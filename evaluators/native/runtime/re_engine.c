/* re_engine.c: a regular-expression engine with the semantics of CPython's `re` module (3.11 to 3.13, str
 * patterns, Unicode mode): the same syntax errors with the same messages, and the same match (leftmost, with
 * sre's backtracking priorities) for every pattern it accepts. The reference is the Python that generates
 * re_tables.h (gen_re_tables.py), which holds its Unicode data.
 *
 * Supported syntax
 *   - Literals (any Unicode character), `.` (any character but "\n"; any character with DOTALL).
 *   - Anchors: `^` `$` (`$` also matches before a final "\n"; with MULTILINE both match at "\n" line
 *     boundaries), `\A`, `\Z`, `\b`, `\B` (word characters are Unicode `\w`; in an empty text neither matches).
 *   - Character classes `[...]` and `[^...]`: ranges, `]` first is literal, `-` first or last is literal,
 *     escapes, `\d \D \w \W \s \S` (inside and outside classes): `\d` is str.isdecimal(), `\w` is
 *     str.isalnum() or "_", `\s` is str.isspace().
 *   - Escapes: `\\`, an escaped ASCII punctuation or non-ASCII character, `\a \f \n \r \t \v`, octal `\0`,
 *     `\0nn` and `\nnn`, `\xhh`, `\uhhhh`, `\Uhhhhhhhh` (`\b` is a backspace inside a class).
 *   - Groups `(...)`, `(?:...)`, named `(?P<name>...)` (ASCII names), comments `(?#...)`.
 *   - Backreferences `\1`..`\99` and `(?P=name)`; conditionals `(?(1)yes|no)` and `(?(name)yes|no)`.
 *   - Quantifiers `* + ? {m} {m,} {,n} {m,n}`, lazy `*? +? ?? {m,n}?`, possessive `*+ ++ ?+ {m,n}+`;
 *     a `{` that does not start a valid quantifier is a literal, as in Python.
 *   - Alternation `|` (empty alternatives too), atomic groups `(?>...)`.
 *   - Lookahead `(?=...)` `(?!...)` and fixed-width lookbehind `(?<=...)` `(?<!...)`.
 *   - Inline flags `i m s x u`: global `(?imsx)` at the start of the pattern, scoped `(?i:...)`,
 *     `(?-i:...)`, `(?i-s:...)`; VERBOSE (`x`) ignores whitespace and `#` comments outside classes.
 *   - IGNORECASE follows sre's Unicode rules: characters match when their simple lower cases agree, plus
 *     the extra equivalences of re._casefix (s/ſ, k/K (Kelvin sign), i/ı/İ, σ/ς, µ/μ, ...), with sre's
 *     handling of ranges and classes (its quirks outside the BMP included).
 * Refused with an error "unsupported: <construct> at position N" (valid in Python, not here)
 *   - `\N{NAME}` named characters; the ASCII flag `(?a)` / `(?a:...)`; the TEMPLATE flag `(?t)` (Python
 *     3.11-3.12 only); group names that are not ASCII; more than 100 nested groups or lookarounds.
 * Everything Python rejects is rejected with Python's own message ("nothing to repeat at position 0", ...,
 * and "the repetition number is too large", Python's OverflowError), except that a pattern using a refused
 * construct may be refused before Python would find an error further on.
 *
 * Design: the pattern is decoded to code points and parsed with the structure of CPython's re/_parser.py
 * (the same checks in the same order, hence the same first error) into a tree of the same shape, with its
 * rewrites (prefixes common to all alternatives factored out, alternatives of single characters merged into
 * a class, one-character classes turned into literals), which decide sre's case-insensitive behaviour. The
 * tree is compiled to a small bytecode run by a backtracking VM on the UTF-8 text with an explicit stack
 * grown through vg_alloc, so nothing recurses over the text (recursion follows the pattern's nesting only,
 * which is capped). Repeats follow sre's rules, including its zero-width rule (no new iteration at the
 * position where the previous one started), and captures follow sre's own save/restore points, which
 * backreferences and conditionals can observe.
 */
#include "re_engine.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "re_tables.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAXREPEAT 0xFFFFFFFFu
#define MAXGROUPS 1073741823u
#define NONE ((size_t)-1)
#define MAX_NESTING 100
#define NOINLINE __attribute__((noinline))

/* Python's flag bits (re._constants) */
#define F_TEMPLATE 1
#define F_I 2
#define F_L 4
#define F_M 8
#define F_S 16
#define F_U 32
#define F_X 64
#define F_DEBUG 128
#define F_A 256
#define TYPE_FLAGS (F_A | F_L | F_U)
#define GLOBAL_FLAGS (F_DEBUG | F_TEMPLATE)

/* ---------------------------------------------------------------------------------------------------------
 * Unicode data */

static int in_ranges(const re_tab_range *r, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid].lo)
            hi = mid;
        else if (c > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

static int u_isword(uint32_t c) {
    if (c < 128) return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') || c == '_';
    return in_ranges(re_tab_word, NELEM(re_tab_word), c);
}

static int u_isdigit(uint32_t c) {
    if (c < 128) return c >= '0' && c <= '9';
    return in_ranges(re_tab_digit, NELEM(re_tab_digit), c);
}

static int u_isspace(uint32_t c) {
    if (c < 128) return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f);
    return in_ranges(re_tab_space, NELEM(re_tab_space), c);
}

static int u_isalpha(uint32_t c) {
    return c != '_' && u_isword(c) && !in_ranges(re_tab_numeric_not_alpha, NELEM(re_tab_numeric_not_alpha), c);
}

static uint32_t case_map(const re_tab_case_run *t, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t[mid].first <= c)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return c;
    const re_tab_case_run *r = &t[lo - 1];
    if (c <= r->last && (c - r->first) % r->stride == 0) return (uint32_t)((int64_t)c + r->delta);
    return c;
}

static uint32_t u_lower(uint32_t c) {
    if (c < 128) return (c - 'A' < 26u) ? c + 32 : c;
    return case_map(re_tab_lower, NELEM(re_tab_lower), c);
}

static uint32_t u_upper(uint32_t c) {
    if (c < 128) return (c - 'a' < 26u) ? c - 32 : c;
    return case_map(re_tab_upper, NELEM(re_tab_upper), c);
}

static int u_iscased(uint32_t c) { return u_lower(c) != c || u_upper(c) != c; }

/* re._casefix: the characters that also match `lo` (a lower-case character) case-insensitively. */
static const uint32_t *u_fixes(uint32_t lo) {
    size_t a = 0, b = NELEM(re_tab_fixes);
    while (a < b) {
        size_t mid = (a + b) / 2;
        if (re_tab_fixes[mid][0] == lo) return re_tab_fixes[mid];
        if (re_tab_fixes[mid][0] < lo)
            a = mid + 1;
        else
            b = mid;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------------------
 * UTF-8 */

static uint32_t u8_decode(const uint8_t *s, size_t i, size_t len, size_t *next) {
    uint8_t b = s[i];
    size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    if (i + n > len) { /* cannot happen on valid UTF-8; keeps a truncated text from reading past its end */
        *next = i + 1;
        return 0xFFFD;
    }
    *next = i + n;
    switch (n) {
    case 1:
        return b;
    case 2:
        return ((uint32_t)(b & 0x1F) << 6) | (s[i + 1] & 0x3F);
    case 3:
        return ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    default:
        return ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
               ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
    }
}

static size_t u8_prev(const uint8_t *s, size_t i) {
    do i--;
    while (i > 0 && (s[i] & 0xC0) == 0x80);
    return i;
}

static int u8_encode(uint32_t c, uint8_t *out) {
    if (c < 0x80) {
        out[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (uint8_t)(0xC0 | (c >> 6));
        out[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (c >> 12));
        out[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (c >> 18));
    out[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

/* ---------------------------------------------------------------------------------------------------------
 * Strings built in the arena (error messages) */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_putc(sbuf *b, char c) {
    if (b->oom) return;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        char *np = vg_alloc(cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np;
        b->cap = cap;
    }
    b->p[b->n++] = c;
}

static void sb_puts(sbuf *b, const char *s) {
    while (*s) sb_putc(b, *s++);
}

static void sb_putu(sbuf *b, uint64_t v) {
    char tmp[24];
    int i = 0;
    do tmp[i++] = (char)('0' + v % 10);
    while (v /= 10);
    while (i) sb_putc(b, tmp[--i]);
}

static void sb_putcp(sbuf *b, uint32_t c) {
    uint8_t u[4];
    int n = u8_encode(c, u);
    for (int i = 0; i < n; i++) sb_putc(b, (char)u[i]);
}

/* Python's repr() of a string, for group names (only ASCII ones reach it). */
static void sb_repr(sbuf *b, const uint32_t *s, size_t n) {
    int single = 0, dbl = 0;
    for (size_t i = 0; i < n; i++) {
        single |= s[i] == '\'';
        dbl |= s[i] == '"';
    }
    char q = (single && !dbl) ? '"' : '\'';
    static const char hex[] = "0123456789abcdef";
    sb_putc(b, q);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c == (uint32_t)q || c == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)c);
        } else if (c == '\t') {
            sb_puts(b, "\\t");
        } else if (c == '\n') {
            sb_puts(b, "\\n");
        } else if (c == '\r') {
            sb_puts(b, "\\r");
        } else if (c < 0x20 || c == 0x7f) {
            sb_puts(b, "\\x");
            sb_putc(b, hex[c >> 4]);
            sb_putc(b, hex[c & 15]);
        } else {
            sb_putcp(b, c);
        }
    }
    sb_putc(b, q);
}

/* ---------------------------------------------------------------------------------------------------------
 * The parsed pattern: the same tree as re/_parser.py builds */

enum { N_LIT = 1, N_NLIT, N_ANY, N_IN, N_AT, N_BRANCH, N_SUB, N_REP, N_ATOMIC, N_ASSERT, N_GREF, N_COND };
enum { AT_BEG, AT_BEG_STR, AT_BOUND, AT_NBOUND, AT_END, AT_END_STR, AT_BEG_LINE, AT_END_LINE };
enum { CAT_DIGIT, CAT_NDIGIT, CAT_SPACE, CAT_NSPACE, CAT_WORD, CAT_NWORD };
enum { CI_LIT, CI_RANGE, CI_CAT };
enum { REP_GREEDY, REP_LAZY, REP_POSS };

typedef struct {
    uint32_t op, a, b; /* CI_LIT a; CI_RANGE a..b; CI_CAT a */
} citem;

typedef struct node node;

typedef struct {
    node **v;
    uint32_t n, cap;
} seq;

struct node {
    uint32_t op;
    uint32_t c;            /* N_LIT/N_NLIT character, N_AT kind, N_GREF/N_COND group */
    uint32_t min, max;     /* N_REP */
    int kind;              /* N_REP: REP_*; N_ASSERT: 1 ahead, -1 behind */
    int neg;               /* N_IN negated, N_ASSERT negative */
    int group, add, del;   /* N_SUB: group (0: none) and flags */
    citem *items;          /* N_IN */
    uint32_t nitems;
    seq *body;             /* N_SUB, N_REP, N_ATOMIC, N_ASSERT; N_COND: yes */
    seq *no;               /* N_COND: no (or NULL) */
    seq **alts;            /* N_BRANCH */
    uint32_t nalts;
    uint32_t cls_plus1;    /* N_IN: the compiled class + 1 (0: none yet), for cls_flags */
    int cls_flags;
};

typedef struct {
    uint64_t lo, hi; /* saturating at UINT64_MAX, which stands for Python's MAXWIDTH */
} width;

/* ---------------------------------------------------------------------------------------------------------
 * Parser: a port of the structure of re/_parser.py */

typedef struct {
    int k; /* 0: end of pattern, 1: a character, 2: an escape (backslash + c) */
    uint32_t c;
} tok;

typedef struct {
    const uint32_t *s;
    size_t n;
    int gid;
} gname;

typedef struct {
    const uint32_t *s; /* the pattern's code points */
    size_t n;
    size_t index;
    tok next;
    int flags;            /* state.flags */
    uint32_t ngroups;     /* state.groups: group 0 included */
    width *gw;            /* state.groupwidths */
    uint8_t *gclosed;
    uint32_t gcap;
    gname *names;
    uint32_t nnames, namecap;
    int64_t lookbehindgroups; /* -1: None */
    uint64_t *refg;       /* state.grouprefpos, in insertion order */
    size_t *refpos;
    uint32_t nref, refcap;
    int depth;
    int err;              /* the first error wins */
    sbuf emsg;
    int has_pos;
    size_t epos;
    int unsup; /* the first unsupported construct, reported when the pattern has no error */
    const char *unsup_what;
    size_t unsup_pos;
} parser;

static void *palloc(parser *p, size_t n) {
    void *r = vg_alloc(n ? n : 1);
    if (!r && !p->err) {
        p->err = 1;
        p->has_pos = 0;
        sb_puts(&p->emsg, "out of memory");
        p->next.k = 0;
        p->index = p->n;
    }
    return r;
}

static void tk_advance(parser *p);

static size_t tk_tell(const parser *p) { return p->index - (size_t)p->next.k; }

/* Starts an error at an explicit position; NULL when an earlier error stands. */
static sbuf *perr_pos(parser *p, size_t pos) {
    if (p->err) return NULL;
    p->err = 1;
    p->has_pos = 1;
    p->epos = pos;
    p->next.k = 0; /* stop the tokenizer: the rest of the parse winds down quickly */
    p->index = p->n;
    return &p->emsg;
}

static sbuf *perr_fmt(parser *p, size_t offset) { return perr_pos(p, tk_tell(p) - offset); }

static void perr(parser *p, const char *msg, size_t offset) {
    sbuf *m = perr_fmt(p, offset);
    if (m) sb_puts(m, msg);
}

static void perr_nopos(parser *p, const char *msg) {
    if (p->err) return;
    p->err = 1;
    p->has_pos = 0;
    sb_puts(&p->emsg, msg);
    p->next.k = 0;
    p->index = p->n;
}

static void unsupported(parser *p, const char *what, size_t pos) {
    if (p->unsup) return;
    p->unsup = 1;
    p->unsup_what = what;
    p->unsup_pos = pos;
}

static void refuse_now(parser *p, const char *what, size_t pos) {
    sbuf *m = perr_pos(p, pos);
    if (!m) return;
    p->has_pos = 0;
    sb_puts(m, "unsupported: ");
    sb_puts(m, what);
    sb_puts(m, " at position ");
    sb_putu(m, pos);
}

static void tk_advance(parser *p) {
    if (p->err || p->index >= p->n) {
        p->next.k = 0;
        return;
    }
    size_t i = p->index;
    uint32_t c = p->s[i];
    if (c == '\\') {
        i++;
        if (i >= p->n) {
            p->next.k = 0;
            sbuf *m = perr_pos(p, p->n - 1);
            if (m) sb_puts(m, "bad escape (end of pattern)");
            return;
        }
        p->next.k = 2;
        p->next.c = p->s[i];
    } else {
        p->next.k = 1;
        p->next.c = c;
    }
    p->index = i + 1;
}

static tok tk_get(parser *p) {
    tok t = p->next;
    tk_advance(p);
    return t;
}

static int tk_is(const parser *p, uint32_t c) { return p->next.k == 1 && p->next.c == c; }

static int tk_match(parser *p, uint32_t c) {
    if (!tk_is(p, c)) return 0;
    tk_advance(p);
    return 1;
}

static void tk_seek(parser *p, size_t index) {
    p->index = index;
    tk_advance(p);
}

static void sb_puttok(sbuf *m, tok t) {
    if (t.k == 2) sb_putc(m, '\\');
    if (t.k) sb_putcp(m, t.c);
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_oct(uint32_t c) { return c >= '0' && c <= '7'; }
static int is_hex(uint32_t c) { return is_digit(c) || ((c | 32) >= 'a' && (c | 32) <= 'f'); }
static int is_ascii_letter(uint32_t c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }
static int tk_isdigit(const parser *p) { return p->next.k == 1 && is_digit(p->next.c); }

static seq *seq_new(parser *p) {
    seq *s = palloc(p, sizeof *s);
    if (s) memset(s, 0, sizeof *s);
    return s;
}

static int seq_push(parser *p, seq *s, node *n) {
    if (!s || !n) return -1;
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 4;
        node **v = palloc(p, cap * sizeof *v);
        if (!v) return -1;
        if (s->n) memcpy(v, s->v, s->n * sizeof *v);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = n;
    return 0;
}

static node *node_new(parser *p, uint32_t op) {
    node *n = palloc(p, sizeof *n);
    if (n) {
        memset(n, 0, sizeof *n);
        n->op = op;
    }
    return n;
}

static node *lit_new(parser *p, uint32_t c) {
    node *n = node_new(p, N_LIT);
    if (n) n->c = c;
    return n;
}

static node *cat_new(parser *p, uint32_t cat) {
    node *n = node_new(p, N_IN);
    citem *it = palloc(p, sizeof *it);
    if (!n || !it) return NULL;
    it->op = CI_CAT;
    it->a = cat;
    it->b = 0;
    n->items = it;
    n->nitems = 1;
    return n;
}

/* ---- groups (State.opengroup / closegroup / checkgroup / checklookbehindgroup) */

static width seq_width(parser *p, const seq *s);

static int64_t group_open(parser *p, const uint32_t *name, size_t namelen) {
    uint32_t gid = p->ngroups;
    if (gid >= p->gcap) {
        uint32_t cap = p->gcap ? p->gcap * 2 : 8;
        width *gw = palloc(p, cap * sizeof *gw);
        uint8_t *gc = palloc(p, cap);
        if (!gw || !gc) return -1;
        if (p->gcap) {
            memcpy(gw, p->gw, p->gcap * sizeof *gw);
            memcpy(gc, p->gclosed, p->gcap);
        }
        p->gw = gw;
        p->gclosed = gc;
        p->gcap = cap;
    }
    p->gclosed[gid] = 0;
    p->ngroups++;
    if (name) {
        for (uint32_t i = 0; i < p->nnames; i++) {
            if (p->names[i].n == namelen && memcmp(p->names[i].s, name, namelen * sizeof *name) == 0) {
                sbuf *m = perr_fmt(p, namelen + 1);
                if (m) {
                    sb_puts(m, "redefinition of group name ");
                    sb_repr(m, name, namelen);
                    sb_puts(m, " as group ");
                    sb_putu(m, gid);
                    sb_puts(m, "; was group ");
                    sb_putu(m, (uint64_t)p->names[i].gid);
                }
                return -1;
            }
        }
        if (p->nnames == p->namecap) {
            uint32_t cap = p->namecap ? p->namecap * 2 : 4;
            gname *nn = palloc(p, cap * sizeof *nn);
            if (!nn) return -1;
            if (p->nnames) memcpy(nn, p->names, p->nnames * sizeof *nn);
            p->names = nn;
            p->namecap = cap;
        }
        p->names[p->nnames].s = name;
        p->names[p->nnames].n = namelen;
        p->names[p->nnames].gid = (int)gid;
        p->nnames++;
    }
    return gid;
}

static int group_check(const parser *p, uint64_t gid) { return gid < p->ngroups && p->gclosed[gid]; }

static int64_t group_lookup(const parser *p, const uint32_t *name, size_t namelen) {
    for (uint32_t i = 0; i < p->nnames; i++)
        if (p->names[i].n == namelen && memcmp(p->names[i].s, name, namelen * sizeof *name) == 0)
            return p->names[i].gid;
    return -1;
}

static void check_lookbehind_group(parser *p, uint64_t gid) {
    if (p->lookbehindgroups < 0) return;
    if (!group_check(p, gid))
        perr(p, "cannot refer to an open group", 0);
    else if (gid >= (uint64_t)p->lookbehindgroups)
        perr(p, "cannot refer to group defined in the same lookbehind subpattern", 0);
}

/* Tokenizer.getuntil: the name up to `term` (escapes count as their two characters). */
static uint32_t *get_until(parser *p, uint32_t term, const char *what, size_t *len) {
    size_t start = tk_tell(p), n = 0;
    uint32_t *out = palloc(p, (p->n - start + 1) * sizeof *out);
    if (!out) return NULL;
    for (;;) {
        tok c = tk_get(p);
        if (p->err) return NULL;
        if (c.k == 0) {
            sbuf *m = perr_fmt(p, n ? n : 0);
            if (m) {
                sb_puts(m, "missing ");
                if (n) {
                    sb_putc(m, (char)term);
                    sb_puts(m, ", unterminated name");
                } else {
                    sb_puts(m, what);
                }
            }
            return NULL;
        }
        if (c.k == 1 && c.c == term) {
            if (!n) {
                sbuf *m = perr_fmt(p, 1);
                if (m) {
                    sb_puts(m, "missing ");
                    sb_puts(m, what);
                }
                return NULL;
            }
            break;
        }
        if (c.k == 2) out[n++] = '\\';
        out[n++] = c.c;
    }
    *len = n;
    return out;
}

static int has_non_ascii(const uint32_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 128) return 1;
    return 0;
}

static int ascii_identifier(const uint32_t *s, size_t n) {
    if (!n || !(is_ascii_letter(s[0]) || s[0] == '_')) return 0;
    for (size_t i = 1; i < n; i++)
        if (!(is_ascii_letter(s[i]) || is_digit(s[i]) || s[i] == '_')) return 0;
    return 1;
}

/* Tokenizer.checkgroupname; non-ASCII names are refused (deciding str.isidentifier needs more tables). */
static int check_group_name(parser *p, const uint32_t *name, size_t n, size_t offset) {
    if (has_non_ascii(name, n)) {
        unsupported(p, "non-ASCII group name", tk_tell(p) - n - offset);
        return 0;
    }
    if (!ascii_identifier(name, n)) {
        sbuf *m = perr_fmt(p, n + offset);
        if (m) {
            sb_puts(m, "bad character in group name ");
            sb_repr(m, name, n);
        }
        return -1;
    }
    return 0;
}

/* ---- escapes */

/* \x, \u, \U: exactly 2, 4 or 8 hex digits. */
static int esc_hex(parser *p, uint32_t kind, uint32_t *value) {
    int want = kind == 'x' ? 2 : kind == 'u' ? 4 : 8, nd = 0;
    uint32_t digits[8];
    uint64_t v = 0;
    while (nd < want && p->next.k == 1 && is_hex(p->next.c)) {
        uint32_t d = p->next.c;
        digits[nd++] = d;
        v = v * 16 + (is_digit(d) ? d - '0' : (d | 32) - 'a' + 10);
        tk_advance(p);
    }
    if (nd != want) {
        sbuf *m = perr_fmt(p, (size_t)(2 + nd));
        if (m) {
            sb_puts(m, "incomplete escape \\");
            sb_putc(m, (char)kind);
            for (int i = 0; i < nd; i++) sb_putc(m, (char)digits[i]);
        }
        return -1;
    }
    if (v > 0x10FFFF) { /* chr() raises ValueError: "bad escape" */
        sbuf *m = perr_fmt(p, 10);
        if (m) {
            sb_puts(m, "bad escape \\U");
            for (int i = 0; i < nd; i++) sb_putc(m, (char)digits[i]);
        }
        return -1;
    }
    *value = (uint32_t)v;
    return 0;
}

/* \N{NAME}: Python's syntax errors, then refused (no name database here). */
static int esc_named(parser *p, size_t start) {
    size_t n;
    if (!tk_match(p, '{')) {
        perr(p, "missing {", 0);
        return -1;
    }
    if (!get_until(p, '}', "character name", &n)) return -1;
    /* refused at once: what follows could fail for want of the character (e.g. as a range's end) */
    refuse_now(p, "\\N{...} named character escape", start);
    return -1;
}

static void octal_error(parser *p, const uint32_t *digits, int nd) {
    sbuf *m = perr_fmt(p, (size_t)(nd + 1));
    if (m) {
        sb_puts(m, "octal escape value \\");
        for (int i = 0; i < nd; i++) sb_putc(m, (char)digits[i]);
        sb_puts(m, " outside of range 0-0o377");
    }
}

static void bad_escape(parser *p, uint32_t c) {
    sbuf *m = perr_fmt(p, 2);
    if (m) {
        sb_puts(m, "bad escape \\");
        sb_putcp(m, c);
    }
}

/* _class_escape: sets *item to a literal or a category. */
static int class_escape(parser *p, uint32_t c, citem *item) {
    size_t start = tk_tell(p) - 2;
    uint32_t v;
    item->op = CI_LIT;
    item->b = 0;
    switch (c) {
    case 'a': item->a = 7; return 0;
    case 'b': item->a = 8; return 0;
    case 'f': item->a = 12; return 0;
    case 'n': item->a = 10; return 0;
    case 'r': item->a = 13; return 0;
    case 't': item->a = 9; return 0;
    case 'v': item->a = 11; return 0;
    case '\\': item->a = '\\'; return 0;
    case 'd': item->op = CI_CAT; item->a = CAT_DIGIT; return 0;
    case 'D': item->op = CI_CAT; item->a = CAT_NDIGIT; return 0;
    case 's': item->op = CI_CAT; item->a = CAT_SPACE; return 0;
    case 'S': item->op = CI_CAT; item->a = CAT_NSPACE; return 0;
    case 'w': item->op = CI_CAT; item->a = CAT_WORD; return 0;
    case 'W': item->op = CI_CAT; item->a = CAT_NWORD; return 0;
    case 'x': case 'u': case 'U':
        if (esc_hex(p, c, &v)) return -1;
        item->a = v;
        return 0;
    case 'N':
        if (esc_named(p, start)) return -1;
        item->a = 0xFFFD;
        return 0;
    default:
        break;
    }
    if (is_oct(c)) {
        uint32_t digits[3];
        int nd = 1;
        digits[0] = c;
        while (nd < 3 && p->next.k == 1 && is_oct(p->next.c)) {
            digits[nd++] = p->next.c;
            tk_advance(p);
        }
        v = 0;
        for (int i = 0; i < nd; i++) v = v * 8 + (digits[i] - '0');
        if (v > 0377) {
            octal_error(p, digits, nd);
            return -1;
        }
        item->a = v;
        return 0;
    }
    if (is_digit(c) || is_ascii_letter(c)) {
        bad_escape(p, c);
        return -1;
    }
    item->a = c;
    return 0;
}

/* _escape: an escape outside a class. */
static node *parse_escape(parser *p, uint32_t c) {
    size_t start = tk_tell(p) - 2;
    node *n;
    uint32_t v;
    switch (c) {
    case 'A': case 'b': case 'B': case 'Z':
        n = node_new(p, N_AT);
        if (n) n->c = c == 'A' ? AT_BEG_STR : c == 'b' ? AT_BOUND : c == 'B' ? AT_NBOUND : AT_END_STR;
        return n;
    case 'd': return cat_new(p, CAT_DIGIT);
    case 'D': return cat_new(p, CAT_NDIGIT);
    case 's': return cat_new(p, CAT_SPACE);
    case 'S': return cat_new(p, CAT_NSPACE);
    case 'w': return cat_new(p, CAT_WORD);
    case 'W': return cat_new(p, CAT_NWORD);
    case 'a': return lit_new(p, 7);
    case 'f': return lit_new(p, 12);
    case 'n': return lit_new(p, 10);
    case 'r': return lit_new(p, 13);
    case 't': return lit_new(p, 9);
    case 'v': return lit_new(p, 11);
    case '\\': return lit_new(p, '\\');
    case 'x': case 'u': case 'U':
        return esc_hex(p, c, &v) ? NULL : lit_new(p, v);
    case 'N':
        return esc_named(p, start) ? NULL : lit_new(p, 0xFFFD);
    case '0': {
        int nd = 0;
        v = 0;
        while (nd < 2 && p->next.k == 1 && is_oct(p->next.c)) {
            v = v * 8 + (p->next.c - '0');
            nd++;
            tk_advance(p);
        }
        return lit_new(p, v);
    }
    default:
        break;
    }
    if (is_digit(c)) { /* an octal escape or a group reference */
        uint32_t digits[3];
        int nd = 1;
        digits[0] = c;
        if (tk_isdigit(p)) {
            digits[nd++] = tk_get(p).c;
            if (is_oct(digits[0]) && is_oct(digits[1]) && p->next.k == 1 && is_oct(p->next.c)) {
                digits[nd++] = tk_get(p).c;
                v = (digits[0] - '0') * 64 + (digits[1] - '0') * 8 + (digits[2] - '0');
                if (v > 0377) {
                    octal_error(p, digits, nd);
                    return NULL;
                }
                return lit_new(p, v);
            }
        }
        uint32_t group = 0;
        for (int i = 0; i < nd; i++) group = group * 10 + (digits[i] - '0');
        if (group < p->ngroups) {
            if (!group_check(p, group)) {
                perr(p, "cannot refer to an open group", (size_t)nd + 1);
                return NULL;
            }
            check_lookbehind_group(p, group);
            if (p->err) return NULL;
            n = node_new(p, N_GREF);
            if (n) n->c = group;
            return n;
        }
        sbuf *m = perr_fmt(p, (size_t)nd);
        if (m) {
            sb_puts(m, "invalid group reference ");
            sb_putu(m, group);
        }
        return NULL;
    }
    if (is_ascii_letter(c)) {
        bad_escape(p, c);
        return NULL;
    }
    return lit_new(p, c);
}

/* ---- character classes */

static int citem_eq(const citem *a, const citem *b) { return a->op == b->op && a->a == b->a && a->b == b->b; }

/* _uniq: drop repeated items, keeping the first of each. */
static uint32_t citems_uniq(citem *items, uint32_t n) {
    uint32_t out = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = 0;
        while (j < out && !citem_eq(&items[j], &items[i])) j++;
        if (j == out) items[out++] = items[i];
    }
    return out;
}

typedef struct {
    citem *v;
    uint32_t n, cap;
} citems;

static int citems_push(parser *p, citems *l, citem it) {
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 8;
        citem *v = palloc(p, cap * sizeof *v);
        if (!v) return -1;
        if (l->n) memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = it;
    return 0;
}

static node *class_node(parser *p, citems *l, int negate) {
    l->n = citems_uniq(l->v, l->n);
    if (l->n == 1 && l->v[0].op == CI_LIT) {
        node *n = node_new(p, negate ? N_NLIT : N_LIT);
        if (n) n->c = l->v[0].a;
        return n;
    }
    node *n = node_new(p, N_IN);
    if (n) {
        n->items = l->v;
        n->nitems = l->n;
        n->neg = negate;
    }
    return n;
}

static void range_error(parser *p, tok a, tok b) {
    sbuf *m = perr_fmt(p, (size_t)a.k + 1 + (size_t)b.k);
    if (m) {
        sb_puts(m, "bad character range ");
        sb_puttok(m, a);
        sb_putc(m, '-');
        sb_puttok(m, b);
    }
}

static NOINLINE node *parse_class(parser *p) {
    size_t here = tk_tell(p) - 1;
    citems l = {0};
    int negate = tk_match(p, '^');
    for (;;) {
        tok t = tk_get(p);
        if (p->err) return NULL;
        if (t.k == 0) {
            perr(p, "unterminated character set", tk_tell(p) - here);
            return NULL;
        }
        if (t.k == 1 && t.c == ']' && l.n) break;
        citem c1 = {CI_LIT, t.c, 0};
        if (t.k == 2 && class_escape(p, t.c, &c1)) return NULL;
        if (tk_match(p, '-')) {
            tok t2 = tk_get(p);
            if (p->err) return NULL;
            if (t2.k == 0) {
                perr(p, "unterminated character set", tk_tell(p) - here);
                return NULL;
            }
            if (t2.k == 1 && t2.c == ']') {
                citem dash = {CI_LIT, '-', 0};
                if (citems_push(p, &l, c1) || citems_push(p, &l, dash)) return NULL;
                break;
            }
            citem c2 = {CI_LIT, t2.c, 0};
            if (t2.k == 2 && class_escape(p, t2.c, &c2)) return NULL;
            if (c1.op != CI_LIT || c2.op != CI_LIT || c2.a < c1.a) {
                range_error(p, t, t2);
                return NULL;
            }
            citem r = {CI_RANGE, c1.a, c2.a};
            if (citems_push(p, &l, r)) return NULL;
        } else if (citems_push(p, &l, c1)) {
            return NULL;
        }
    }
    return class_node(p, &l, negate);
}

/* ---- repeats */

static int parse_count(parser *p, uint64_t *value) {
    int any = 0;
    uint64_t v = 0;
    while (tk_isdigit(p)) {
        uint32_t d = tk_get(p).c - '0';
        v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + d;
        any = 1;
    }
    *value = v;
    return any;
}

static NOINLINE int parse_repeat(parser *p, seq *sub, uint32_t this) {
    size_t here = tk_tell(p);
    uint32_t min = 0, max = MAXREPEAT;
    if (this == '?') {
        max = 1;
    } else if (this == '+') {
        min = 1;
    } else if (this == '{') {
        if (tk_is(p, '}')) return seq_push(p, sub, lit_new(p, '{'));
        uint64_t lo, hi;
        int has_lo = parse_count(p, &lo), has_hi;
        if (tk_match(p, ',')) {
            has_hi = parse_count(p, &hi);
        } else {
            has_hi = has_lo;
            hi = lo;
        }
        if (p->err) return -1;
        if (!tk_match(p, '}')) {
            if (seq_push(p, sub, lit_new(p, '{'))) return -1;
            tk_seek(p, here);
            return 0;
        }
        if (has_lo) {
            if (lo >= MAXREPEAT) {
                perr_nopos(p, "the repetition number is too large");
                return -1;
            }
            min = (uint32_t)lo;
        }
        if (has_hi) {
            if (hi >= MAXREPEAT) {
                perr_nopos(p, "the repetition number is too large");
                return -1;
            }
            max = (uint32_t)hi;
            if (max < min) {
                perr(p, "min repeat greater than max repeat", tk_tell(p) - here);
                return -1;
            }
        }
    }
    node *item = sub->n ? sub->v[sub->n - 1] : NULL;
    if (!item || item->op == N_AT) {
        perr(p, "nothing to repeat", tk_tell(p) - here + 1);
        return -1;
    }
    if (item->op == N_REP) {
        perr(p, "multiple repeat", tk_tell(p) - here + 1);
        return -1;
    }
    node *r = node_new(p, N_REP);
    if (!r) return -1;
    r->min = min;
    r->max = max;
    if (item->op == N_SUB && !item->group && !item->add && !item->del) {
        r->body = item->body;
    } else {
        r->body = seq_new(p);
        if (seq_push(p, r->body, item)) return -1;
    }
    r->kind = tk_match(p, '?') ? REP_LAZY : tk_match(p, '+') ? REP_POSS : REP_GREEDY;
    sub->v[sub->n - 1] = r;
    return 0;
}

/* ---- inline flags (_parse_flags): 1 for global flags, 0 for scoped ones, -1 on error */

static int flag_bit(tok t) {
    if (t.k != 1) return 0;
    switch (t.c) {
    case 'i': return F_I;
    case 'L': return F_L;
    case 'm': return F_M;
    case 's': return F_S;
    case 'x': return F_X;
    case 'a': return F_A;
    case 't': return RE_TAB_TEMPLATE_FLAG ? F_TEMPLATE : 0;
    case 'u': return F_U;
    default: return 0;
    }
}

static int tok_isalpha(tok t) { return t.k == 1 && u_isalpha(t.c); }

static NOINLINE int parse_flags(parser *p, tok c, int *add_out, int *del_out) {
    int add = 0, del = 0;
    if (!(c.k == 1 && c.c == '-')) {
        for (;;) {
            int flag = flag_bit(c);
            if (c.c == 'L') {
                perr(p, "bad inline flags: cannot use 'L' flag with a str pattern", 0);
                return -1;
            }
            add |= flag;
            if ((flag & TYPE_FLAGS) && (add & TYPE_FLAGS) != flag) {
                perr(p, "bad inline flags: flags 'a', 'u' and 'L' are incompatible", 0);
                return -1;
            }
            c = tk_get(p);
            if (p->err) return -1;
            if (c.k == 0) {
                perr(p, "missing -, : or )", 0);
                return -1;
            }
            if (c.k == 1 && (c.c == ')' || c.c == '-' || c.c == ':')) break;
            if (!flag_bit(c)) {
                perr(p, tok_isalpha(c) ? "unknown flag" : "missing -, : or )", (size_t)c.k);
                return -1;
            }
        }
    }
    if (c.c == ')') {
        p->flags |= add;
        *add_out = add;
        return 1;
    }
    if (add & GLOBAL_FLAGS) {
        perr(p, "bad inline flags: cannot turn on global flag", 1);
        return -1;
    }
    if (c.c == '-') {
        c = tk_get(p);
        if (p->err) return -1;
        if (c.k == 0) {
            perr(p, "missing flag", 0);
            return -1;
        }
        if (!flag_bit(c)) {
            perr(p, tok_isalpha(c) ? "unknown flag" : "missing flag", (size_t)c.k);
            return -1;
        }
        for (;;) {
            int flag = flag_bit(c);
            if (flag & TYPE_FLAGS) {
                perr(p, "bad inline flags: cannot turn off flags 'a', 'u' and 'L'", 0);
                return -1;
            }
            del |= flag;
            c = tk_get(p);
            if (p->err) return -1;
            if (c.k == 0) {
                perr(p, "missing :", 0);
                return -1;
            }
            if (c.k == 1 && c.c == ':') break;
            if (!flag_bit(c)) {
                perr(p, tok_isalpha(c) ? "unknown flag" : "missing :", (size_t)c.k);
                return -1;
            }
        }
    }
    if (del & GLOBAL_FLAGS) {
        perr(p, "bad inline flags: cannot turn off global flag", 1);
        return -1;
    }
    if (add & del) {
        perr(p, "bad inline flags: flag turned on and off", 1);
        return -1;
    }
    *add_out = add;
    *del_out = del;
    return 0;
}

/* ---- groups and the rest of _parse */

static seq *parse_alt(parser *p, int verbose, int nested);
static seq *parse_seq(parser *p, int verbose, int nested, int first);

static int enter_nesting(parser *p, size_t start) {
    if (p->depth >= MAX_NESTING) {
        refuse_now(p, "pattern nested too deeply", start);
        return -1;
    }
    p->depth++;
    return 0;
}

/* Python's int() on an ASCII string: optional whitespace and sign, digits with single underscores between. */
static int py_int(const uint32_t *s, size_t n, int *negative, uint64_t *value) {
    size_t i = 0, j = n;
    while (i < j && u_isspace(s[i])) i++;
    while (j > i && u_isspace(s[j - 1])) j--;
    *negative = 0;
    if (i < j && (s[i] == '+' || s[i] == '-')) *negative = s[i++] == '-';
    if (i == j || !is_digit(s[i]) || !is_digit(s[j - 1])) return 0;
    uint64_t v = 0;
    for (; i < j; i++) {
        if (s[i] == '_') {
            if (!is_digit(s[i + 1])) return 0;
            continue;
        }
        if (!is_digit(s[i])) return 0;
        v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + (s[i] - '0');
    }
    *value = v;
    return 1;
}

static NOINLINE int parse_conditional(parser *p, seq *sub, int verbose, int nested, size_t start) {
    size_t n;
    uint64_t group;
    uint32_t *name = get_until(p, ')', "group name", &n);
    if (!name) return -1;
    if (has_non_ascii(name, n) || ascii_identifier(name, n)) {
        if (check_group_name(p, name, n, 1)) return -1;
        int64_t g = has_non_ascii(name, n) ? 1 : group_lookup(p, name, n);
        if (g < 0) {
            sbuf *m = perr_fmt(p, n + 1);
            if (m) {
                sb_puts(m, "unknown group name ");
                sb_repr(m, name, n);
            }
            return -1;
        }
        group = (uint64_t)g;
    } else {
        int negative;
        if (!py_int(name, n, &negative, &group) || (negative && group)) {
            sbuf *m = perr_fmt(p, n + 1);
            if (m) {
                sb_puts(m, "bad character in group name ");
                sb_repr(m, name, n);
            }
            return -1;
        }
        if (!group) {
            perr(p, "bad group number", n + 1);
            return -1;
        }
        if (group >= MAXGROUPS) {
            sbuf *m = perr_fmt(p, n + 1);
            if (m) {
                sb_puts(m, "invalid group reference ");
                sb_putu(m, group);
            }
            return -1;
        }
        uint32_t i = 0;
        while (i < p->nref && p->refg[i] != group) i++;
        if (i == p->nref) {
            if (p->nref == p->refcap) {
                uint32_t cap = p->refcap ? p->refcap * 2 : 4;
                uint64_t *rg = palloc(p, cap * sizeof *rg);
                size_t *rp = palloc(p, cap * sizeof *rp);
                if (!rg || !rp) return -1;
                if (p->nref) {
                    memcpy(rg, p->refg, p->nref * sizeof *rg);
                    memcpy(rp, p->refpos, p->nref * sizeof *rp);
                }
                p->refg = rg;
                p->refpos = rp;
                p->refcap = cap;
            }
            p->refg[p->nref] = group;
            p->refpos[p->nref] = tk_tell(p) - n - 1;
            p->nref++;
        }
    }
    check_lookbehind_group(p, group);
    if (p->err || enter_nesting(p, start)) return -1;
    node *c = node_new(p, N_COND);
    if (!c) return -1;
    c->c = (uint32_t)group;
    c->body = parse_seq(p, verbose, nested + 1, 0);
    if (!c->body) return -1;
    if (tk_match(p, '|')) {
        c->no = parse_seq(p, verbose, nested + 1, 0);
        if (!c->no) return -1;
        if (tk_is(p, '|')) {
            perr(p, "conditional backref with more than two branches", 0);
            return -1;
        }
    }
    p->depth--;
    if (!tk_match(p, ')')) {
        perr(p, "missing ), unterminated subpattern", tk_tell(p) - start);
        return -1;
    }
    return seq_push(p, sub, c);
}

static NOINLINE int parse_lookaround(parser *p, seq *sub, int verbose, int nested, size_t start, tok ch) {
    int dir = 1, neg = ch.c == '!';
    int64_t saved = 0;
    if (ch.c == '<') {
        tok c2 = tk_get(p);
        if (p->err) return -1;
        if (c2.k == 0) {
            perr(p, "unexpected end of pattern", 0);
            return -1;
        }
        if (!(c2.k == 1 && (c2.c == '=' || c2.c == '!'))) {
            sbuf *m = perr_fmt(p, (size_t)c2.k + 2);
            if (m) {
                sb_puts(m, "unknown extension ?<");
                sb_puttok(m, c2);
            }
            return -1;
        }
        dir = -1;
        neg = c2.c == '!';
        saved = p->lookbehindgroups;
        if (saved < 0) p->lookbehindgroups = p->ngroups;
    }
    if (enter_nesting(p, start)) return -1;
    seq *body = parse_alt(p, verbose, nested + 1);
    if (!body) return -1;
    p->depth--;
    if (dir < 0 && saved < 0) p->lookbehindgroups = -1;
    if (!tk_match(p, ')')) {
        perr(p, "missing ), unterminated subpattern", tk_tell(p) - start);
        return -1;
    }
    node *a = node_new(p, N_ASSERT);
    if (!a) return -1;
    a->kind = dir;
    a->neg = neg;
    a->body = body;
    return seq_push(p, sub, a);
}

/* Returns 0 when the group was consumed, -1 on error. */
static NOINLINE int parse_paren(parser *p, seq *sub, int *verbose, int nested, int first) {
    size_t start = tk_tell(p) - 1;
    int capture = 1, atomic = 0, add = 0, del = 0;
    uint32_t *name = NULL;
    size_t namelen = 0;
    if (tk_match(p, '?')) {
        tok ch = tk_get(p);
        if (p->err) return -1;
        if (ch.k == 0) {
            perr(p, "unexpected end of pattern", 0);
            return -1;
        }
        if (ch.k == 1 && ch.c == 'P') {
            if (tk_match(p, '<')) {
                name = get_until(p, '>', "group name", &namelen);
                if (!name || check_group_name(p, name, namelen, 1)) return -1;
            } else if (tk_match(p, '=')) {
                name = get_until(p, ')', "group name", &namelen);
                if (!name || check_group_name(p, name, namelen, 1)) return -1;
                int64_t gid = group_lookup(p, name, namelen);
                if (gid < 0) {
                    if (has_non_ascii(name, namelen)) return 0; /* refused as unsupported anyway */
                    sbuf *m = perr_fmt(p, namelen + 1);
                    if (m) {
                        sb_puts(m, "unknown group name ");
                        sb_repr(m, name, namelen);
                    }
                    return -1;
                }
                if (!group_check(p, (uint64_t)gid)) {
                    perr(p, "cannot refer to an open group", namelen + 1);
                    return -1;
                }
                check_lookbehind_group(p, (uint64_t)gid);
                node *r = node_new(p, N_GREF);
                if (p->err || !r) return -1;
                r->c = (uint32_t)gid;
                return seq_push(p, sub, r);
            } else {
                tok c2 = tk_get(p);
                if (p->err) return -1;
                if (c2.k == 0) {
                    perr(p, "unexpected end of pattern", 0);
                    return -1;
                }
                sbuf *m = perr_fmt(p, (size_t)c2.k + 2);
                if (m) {
                    sb_puts(m, "unknown extension ?P");
                    sb_puttok(m, c2);
                }
                return -1;
            }
        } else if (ch.k == 1 && ch.c == ':') {
            capture = 0;
        } else if (ch.k == 1 && ch.c == '#') {
            for (;;) {
                if (p->next.k == 0) {
                    perr(p, "missing ), unterminated comment", tk_tell(p) - start);
                    return -1;
                }
                tok c = tk_get(p);
                if (p->err) return -1;
                if (c.k == 1 && c.c == ')') break;
            }
            return 0;
        } else if (ch.k == 1 && (ch.c == '=' || ch.c == '!' || ch.c == '<')) {
            return parse_lookaround(p, sub, *verbose, nested, start, ch);
        } else if (ch.k == 1 && ch.c == '(') {
            return parse_conditional(p, sub, *verbose, nested, start);
        } else if (ch.k == 1 && ch.c == '>') {
            capture = 0;
            atomic = 1;
        } else if (flag_bit(ch) || (ch.k == 1 && ch.c == '-')) {
            int r = parse_flags(p, ch, &add, &del);
            if (r < 0) return -1;
            if (add & F_A) unsupported(p, "ASCII flag (?a)", start);
            if (add & F_TEMPLATE) unsupported(p, "TEMPLATE flag (?t)", start);
            if (r == 1) {
                if (!first || sub->n) {
                    perr(p, "global flags not at the start of the expression", tk_tell(p) - start);
                    return -1;
                }
                *verbose = p->flags & F_X;
                return 0;
            }
            capture = 0;
        } else {
            sbuf *m = perr_fmt(p, (size_t)ch.k + 1);
            if (m) {
                sb_puts(m, "unknown extension ?");
                sb_puttok(m, ch);
            }
            return -1;
        }
    }
    int64_t group = 0;
    if (capture) {
        group = group_open(p, name, namelen);
        if (group < 0) return -1;
    }
    if (enter_nesting(p, start)) return -1;
    int sub_verbose = (*verbose || (add & F_X)) && !(del & F_X);
    seq *body = parse_alt(p, sub_verbose, nested + 1);
    if (!body) return -1;
    p->depth--;
    if (!tk_match(p, ')')) {
        perr(p, "missing ), unterminated subpattern", tk_tell(p) - start);
        return -1;
    }
    if (group) {
        p->gw[group] = seq_width(p, body);
        p->gclosed[group] = 1;
    }
    node *g = node_new(p, atomic ? N_ATOMIC : N_SUB);
    if (!g) return -1;
    g->group = (int)group;
    g->add = add;
    g->del = del;
    g->body = body;
    return seq_push(p, sub, g);
}

static int is_special(uint32_t c) {
    switch (c) {
    case '.': case '\\': case '[': case '{': case '(': case ')': case '*': case '+': case '?': case '^':
    case '$': case '|':
        return 1;
    default:
        return 0;
    }
}

static int is_verbose_space(uint32_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* _parse: a sequence up to "|" or ")". */
static seq *parse_seq(parser *p, int verbose, int nested, int first) {
    seq *sub = seq_new(p);
    if (!sub) return NULL;
    for (;;) {
        if (p->err) return NULL;
        tok t = p->next;
        if (t.k == 0 || (t.k == 1 && (t.c == '|' || t.c == ')'))) break;
        tk_advance(p);
        if (verbose && t.k == 1) {
            if (is_verbose_space(t.c)) continue;
            if (t.c == '#') {
                for (;;) {
                    tok c = tk_get(p);
                    if (c.k == 0 || (c.k == 1 && c.c == '\n')) break;
                }
                continue;
            }
        }
        int r = 0;
        if (t.k == 2) {
            r = seq_push(p, sub, parse_escape(p, t.c));
        } else if (!is_special(t.c)) {
            r = seq_push(p, sub, lit_new(p, t.c));
        } else if (t.c == '[') {
            r = seq_push(p, sub, parse_class(p));
        } else if (t.c == '*' || t.c == '+' || t.c == '?' || t.c == '{') {
            r = parse_repeat(p, sub, t.c);
        } else if (t.c == '.') {
            r = seq_push(p, sub, node_new(p, N_ANY));
        } else if (t.c == '(') {
            r = parse_paren(p, sub, &verbose, nested, first);
        } else { /* ^ $ */
            node *n = node_new(p, N_AT);
            if (n) n->c = t.c == '^' ? AT_BEG : AT_END;
            r = seq_push(p, sub, n);
        }
        if (r || p->err) return NULL;
    }
    /* unpack non-capturing groups without flags */
    uint32_t extra = 0;
    for (uint32_t i = 0; i < sub->n; i++) {
        node *n = sub->v[i];
        if (n->op == N_SUB && !n->group && !n->add && !n->del) extra += n->body->n;
    }
    if (extra) {
        node **v = palloc(p, (sub->n + extra) * sizeof *v);
        if (!v) return NULL;
        uint32_t k = 0;
        for (uint32_t i = 0; i < sub->n; i++) {
            node *n = sub->v[i];
            if (n->op == N_SUB && !n->group && !n->add && !n->del) {
                for (uint32_t j = 0; j < n->body->n; j++) v[k++] = n->body->v[j];
            } else {
                v[k++] = n;
            }
        }
        sub->v = v;
        sub->n = k;
        sub->cap = sub->n + extra;
    } else {
        /* still drop empty non-capturing groups */
        uint32_t k = 0;
        for (uint32_t i = 0; i < sub->n; i++) {
            node *n = sub->v[i];
            if (!(n->op == N_SUB && !n->group && !n->add && !n->del)) sub->v[k++] = n;
        }
        sub->n = k;
    }
    return sub;
}

/* Equality of two items as Python compares them when factoring out a common prefix: by value for the
 * single-character items, never for anything holding a subpattern (those compare by identity). */
static int node_eq(const node *a, const node *b) {
    if (a->op != b->op) return 0;
    switch (a->op) {
    case N_LIT: case N_NLIT: case N_AT: case N_GREF:
        return a->c == b->c;
    case N_ANY:
        return 1;
    case N_IN:
        if (a->neg != b->neg || a->nitems != b->nitems) return 0;
        for (uint32_t i = 0; i < a->nitems; i++)
            if (!citem_eq(&a->items[i], &b->items[i])) return 0;
        return 1;
    default:
        return a == b;
    }
}

/* _parse_sub: alternatives. */
static seq *parse_alt(parser *p, int verbose, int nested) {
    seq **items = NULL;
    uint32_t n = 0, cap = 0;
    for (;;) {
        seq *s = parse_seq(p, verbose, nested + 1, nested == 0 && n == 0);
        if (!s) return NULL;
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            seq **v = palloc(p, cap * sizeof *v);
            if (!v) return NULL;
            if (n) memcpy(v, items, n * sizeof *v);
            items = v;
        }
        items[n++] = s;
        if (!tk_match(p, '|')) break;
        if (nested == 0) verbose = p->flags & F_X;
    }
    if (n == 1) return items[0];
    seq *res = seq_new(p);
    if (!res) return NULL;
    /* move a prefix common to all alternatives out of the branch */
    for (;;) {
        node *prefix = NULL;
        uint32_t i;
        for (i = 0; i < n; i++) {
            if (!items[i]->n) break;
            if (!prefix)
                prefix = items[i]->v[0];
            else if (!node_eq(items[i]->v[0], prefix))
                break;
        }
        if (i < n) break;
        for (i = 0; i < n; i++) {
            items[i]->n--;
            for (uint32_t j = 0; j < items[i]->n; j++) items[i]->v[j] = items[i]->v[j + 1];
        }
        if (seq_push(p, res, prefix)) return NULL;
    }
    /* alternatives that are all single characters or classes become one class */
    uint32_t i, total = 0;
    for (i = 0; i < n; i++) {
        node *it = items[i]->n == 1 ? items[i]->v[0] : NULL;
        if (!it || !(it->op == N_LIT || (it->op == N_IN && !it->neg))) break;
        total += it->op == N_LIT ? 1 : it->nitems;
    }
    if (i == n) {
        citem *set = palloc(p, (total ? total : 1) * sizeof *set);
        node *in = node_new(p, N_IN);
        if (!set || !in) return NULL;
        uint32_t k = 0;
        for (i = 0; i < n; i++) {
            node *it = items[i]->v[0];
            if (it->op == N_LIT) {
                set[k].op = CI_LIT;
                set[k].a = it->c;
                set[k].b = 0;
                k++;
            } else {
                for (uint32_t j = 0; j < it->nitems; j++) set[k++] = it->items[j];
            }
        }
        in->items = set;
        in->nitems = citems_uniq(set, k);
        if (seq_push(p, res, in)) return NULL;
        return res;
    }
    node *br = node_new(p, N_BRANCH);
    if (!br) return NULL;
    br->alts = items;
    br->nalts = n;
    if (seq_push(p, res, br)) return NULL;
    return res;
}

/* ---- widths (SubPattern.getwidth) */

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sat_mul(uint64_t a, uint64_t b) { return (a && b > UINT64_MAX / a) ? UINT64_MAX : a * b; }

static width seq_width(parser *p, const seq *s) {
    width w = {0, 0};
    for (uint32_t k = 0; k < s->n; k++) {
        const node *n = s->v[k];
        width x = {0, 0};
        switch (n->op) {
        case N_BRANCH:
            x.lo = UINT64_MAX;
            for (uint32_t i = 0; i < n->nalts; i++) {
                width a = seq_width(p, n->alts[i]);
                if (a.lo < x.lo) x.lo = a.lo;
                if (a.hi > x.hi) x.hi = a.hi;
            }
            break;
        case N_ATOMIC: case N_SUB:
            x = seq_width(p, n->body);
            break;
        case N_REP: {
            width b = seq_width(p, n->body);
            w.lo = sat_add(w.lo, sat_mul(b.lo, n->min));
            if (n->max == MAXREPEAT && b.hi)
                w.hi = UINT64_MAX;
            else
                w.hi = sat_add(w.hi, sat_mul(b.hi, n->max));
            continue;
        }
        case N_LIT: case N_NLIT: case N_ANY: case N_IN:
            x.lo = x.hi = 1;
            break;
        case N_GREF:
            x = p->gw[n->c];
            break;
        case N_COND: {
            x = seq_width(p, n->body);
            if (n->no) {
                width b = seq_width(p, n->no);
                if (b.lo < x.lo) x.lo = b.lo;
                if (b.hi > x.hi) x.hi = b.hi;
            } else {
                x.lo = 0;
            }
            break;
        }
        default: /* N_AT, N_ASSERT */
            break;
        }
        w.lo = sat_add(w.lo, x.lo);
        w.hi = sat_add(w.hi, x.hi);
    }
    return w;
}

/* ---------------------------------------------------------------------------------------------------------
 * The compiled program */

enum {
    I_STR = 1,  /* off len: the UTF-8 bytes str[off..off+len) */
    I_CHAR,     /* c */
    I_NCHAR,    /* c */
    I_CHAR_IC,  /* lo: a character whose lower case is lo */
    I_NCHAR_IC, /* lo */
    I_ANY,      /* - */
    I_ANYALL,   /* - */
    I_CLASS,    /* class index */
    I_AT,       /* AT_* */
    I_BRANCH,   /* snap n alt_0 .. alt_n-1: the alternatives in order */
    I_JMP,      /* target */
    I_MARK,     /* mark index */
    I_REP_INIT, /* r */
    I_UNTIL_G,  /* r min max body tail */
    I_UNTIL_L,  /* r min max body tail snap */
    I_STAR,     /* kind min max snap, then a 2-word single-character matcher, then the tail */
    I_ATOM_START, /* a */
    I_ATOM_END,   /* a */
    I_LOOK_START, /* a kind width cont snap (kind: bit 0 negative, bit 1 behind) */
    I_LOOK_END,   /* a negative */
    I_BREF,       /* group ignorecase */
    I_COND,       /* group no */
    I_MATCH
};

typedef struct {
    uint32_t ascii[4]; /* the answer for code points below 128 */
    uint8_t fold;      /* test the lower case of the character (sre's IN_UNI_IGNORE) */
    uint8_t neg;
    uint8_t cats;      /* 1 << CAT_* */
    uint32_t nr, nl, nu;
    uint32_t *r;  /* sorted disjoint ranges, pairs */
    uint32_t *l;  /* literals tested against the lower case (non-BMP literals under IGNORECASE) */
    uint32_t *u;  /* ranges tested against the lower case and its upper case (sre's RANGE_UNI_IGNORE) */
} cls;

struct re_prog {
    uint32_t *code;
    uint8_t *str;
    cls *cl;
    uint32_t nmarks;            /* 2 per capturing group */
    uint32_t nregs, rc, rl, ra; /* registers: repeat counts, repeat last positions, atomic barriers */
    int anchored;          /* can only match at position 0 */
    int use_first;         /* first[] lists every byte a match can start with */
    uint8_t first[32];
    uint8_t *prefix;       /* literal bytes every match starts with */
    uint32_t nprefix;
    uint64_t minw;         /* fewest code points of a match */
};

/* ---------------------------------------------------------------------------------------------------------
 * Compiler */

typedef struct {
    parser *p;
    uint32_t *code;
    uint32_t n, cap;
    uint8_t *str;
    uint32_t nstr, capstr;
    cls *cl;
    uint32_t ncl, capcl;
    uint32_t nrep, natom;
    int in_repeat; /* compiling the body of a (not possessive) general repeat: sre's state->repeat is set */
    uint8_t *bmp;  /* scratch: a bitmap of the BMP for case-insensitive classes */
} comp;

static int emit(comp *C, uint32_t w) {
    if (C->n == C->cap) {
        uint32_t cap = C->cap ? C->cap * 2 : 64;
        uint32_t *v = palloc(C->p, cap * sizeof *v);
        if (!v) return -1;
        if (C->n) memcpy(v, C->code, C->n * sizeof *v);
        C->code = v;
        C->cap = cap;
    }
    C->code[C->n++] = w;
    return 0;
}

static int emit2(comp *C, uint32_t a, uint32_t b) { return emit(C, a) || emit(C, b); }

static int str_put(comp *C, uint32_t c) {
    if (C->nstr + 4 > C->capstr) {
        uint32_t cap = C->capstr ? C->capstr * 2 : 64;
        uint8_t *v = palloc(C->p, cap);
        if (!v) return -1;
        if (C->nstr) memcpy(v, C->str, C->nstr);
        C->str = v;
        C->capstr = cap;
    }
    C->nstr += (uint32_t)u8_encode(c, C->str + C->nstr);
    return 0;
}

static int cat_match(uint32_t cats, uint32_t x) {
    if ((cats & (1 << CAT_DIGIT)) && u_isdigit(x)) return 1;
    if ((cats & (1 << CAT_NDIGIT)) && !u_isdigit(x)) return 1;
    if ((cats & (1 << CAT_SPACE)) && u_isspace(x)) return 1;
    if ((cats & (1 << CAT_NSPACE)) && !u_isspace(x)) return 1;
    if ((cats & (1 << CAT_WORD)) && u_isword(x)) return 1;
    if ((cats & (1 << CAT_NWORD)) && !u_isword(x)) return 1;
    return 0;
}

static int pairs_contain(const uint32_t *r, uint32_t n, uint32_t c) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (c < r[2 * mid])
            hi = mid;
        else if (c > r[2 * mid + 1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

static int cls_eval(const cls *k, uint32_t c) {
    uint32_t x = k->fold ? u_lower(c) : c;
    int in = pairs_contain(k->r, k->nr, x) || (k->cats && cat_match(k->cats, x));
    for (uint32_t i = 0; !in && i < k->nl; i++) in = k->l[i] == x;
    for (uint32_t i = 0; !in && i < k->nu; i++) {
        uint32_t up = u_upper(x);
        in = (k->u[2 * i] <= x && x <= k->u[2 * i + 1]) || (k->u[2 * i] <= up && up <= k->u[2 * i + 1]);
    }
    return in ^ k->neg;
}

static inline int cls_match(const cls *k, uint32_t c) {
    if (c < 128) return (int)((k->ascii[c >> 5] >> (c & 31)) & 1);
    return cls_eval(k, c);
}

/* Sorts pairs (heapsort: no recursion, no worst case) and merges overlapping or adjacent ones. */
static void pairs_sift(uint32_t *r, uint32_t i, uint32_t n) {
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && r[2 * (c + 1)] > r[2 * c]) c++;
        if (r[2 * c] <= r[2 * i]) return;
        uint32_t a = r[2 * i], b = r[2 * i + 1];
        r[2 * i] = r[2 * c];
        r[2 * i + 1] = r[2 * c + 1];
        r[2 * c] = a;
        r[2 * c + 1] = b;
        i = c;
    }
}

static uint32_t pairs_normalize(uint32_t *r, uint32_t n) {
    if (n < 2) return n;
    for (uint32_t i = n / 2; i-- > 0;) pairs_sift(r, i, n);
    for (uint32_t end = n - 1; end > 0; end--) {
        uint32_t a = r[0], b = r[1];
        r[0] = r[2 * end];
        r[1] = r[2 * end + 1];
        r[2 * end] = a;
        r[2 * end + 1] = b;
        pairs_sift(r, 0, end);
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (k && (uint64_t)r[2 * i] <= (uint64_t)r[2 * (k - 1) + 1] + 1) {
            if (r[2 * i + 1] > r[2 * (k - 1) + 1]) r[2 * (k - 1) + 1] = r[2 * i + 1];
        } else {
            r[2 * k] = r[2 * i];
            r[2 * k + 1] = r[2 * i + 1];
            k++;
        }
    }
    return k;
}

static void bmp_set(uint8_t *bmp, uint32_t c) { bmp[c >> 3] |= (uint8_t)(1u << (c & 7)); }

static void bmp_set_folded(uint8_t *bmp, uint32_t lo) {
    bmp_set(bmp, lo);
    const uint32_t *fx = u_fixes(lo);
    if (fx)
        for (uint32_t j = 0; j < fx[1]; j++) bmp_set(bmp, fx[2 + j]);
}

static int bmp_bit(const uint8_t *bmp, uint32_t c) { return (bmp[c >> 3] >> (c & 7)) & 1; }

/* The runs of set bits of the BMP map, as the class's ranges. */
static int bmp_runs(comp *C, cls *k) {
    const uint8_t *bmp = C->bmp;
    uint32_t cap = 16;
    k->r = palloc(C->p, cap * 2 * sizeof(uint32_t));
    if (!k->r) return -1;
    for (uint32_t c = 0; c < 0x10000;) {
        if (!(c & 7) && !bmp[c >> 3]) {
            c += 8;
            continue;
        }
        if (!bmp_bit(bmp, c)) {
            c++;
            continue;
        }
        uint32_t e = c + 1;
        while (e < 0x10000) {
            if (!(e & 7) && bmp[e >> 3] == 0xFF)
                e += 8;
            else if (bmp_bit(bmp, e))
                e++;
            else
                break;
        }
        if (k->nr == cap) {
            uint32_t *r = palloc(C->p, cap * 4 * sizeof(uint32_t));
            if (!r) return -1;
            memcpy(r, k->r, cap * 2 * sizeof(uint32_t));
            k->r = r;
            cap *= 2;
        }
        k->r[2 * k->nr] = c;
        k->r[2 * k->nr + 1] = e - 1;
        k->nr++;
        c = e;
    }
    return 0;
}

/* A class as _optimize_charset + _compile_charset make it: under IGNORECASE the literals and ranges are
 * lower-cased (with re._casefix's equivalents) into a BMP map, and if any was cased the character is
 * lower-cased before the test; literals and ranges beyond the BMP stay as they are (sre's quirks). */
static int class_add(comp *C, cls *k, uint32_t *index);

static int class_build(comp *C, const citem *items, uint32_t nitems, int neg, int flags, uint32_t *index) {
    cls k;
    memset(&k, 0, sizeof k);
    k.neg = (uint8_t)neg;
    uint32_t nr = 0, nl = 0, nu = 0;
    for (uint32_t i = 0; i < nitems; i++) {
        if (items[i].op == CI_CAT) k.cats |= (uint8_t)(1u << items[i].a);
        nr += items[i].op != CI_CAT;
    }
    if (!(flags & F_I)) {
        k.r = palloc(C->p, (nr ? nr : 1) * 2 * sizeof(uint32_t));
        if (!k.r) return -1;
        for (uint32_t i = 0; i < nitems; i++) {
            if (items[i].op == CI_CAT) continue;
            k.r[2 * k.nr] = items[i].a;
            k.r[2 * k.nr + 1] = items[i].op == CI_RANGE ? items[i].b : items[i].a;
            k.nr++;
        }
        k.nr = pairs_normalize(k.r, k.nr);
    } else {
        if (!C->bmp && !(C->bmp = palloc(C->p, 8192))) return -1;
        memset(C->bmp, 0, 8192);
        int hascased = 0;
        k.l = palloc(C->p, (nr ? nr : 1) * sizeof(uint32_t));
        k.u = palloc(C->p, (nr ? nr : 1) * 2 * sizeof(uint32_t));
        if (!k.l || !k.u) return -1;
        for (uint32_t i = 0; i < nitems; i++) {
            const citem *it = &items[i];
            if (it->op == CI_LIT) {
                uint32_t lo = u_lower(it->a);
                if (lo >= 0x10000) {
                    k.l[nl++] = it->a;
                    hascased = 1;
                } else {
                    bmp_set_folded(C->bmp, lo);
                    hascased |= u_iscased(it->a);
                }
            } else if (it->op == CI_RANGE) {
                uint32_t top = it->b < 0xFFFF ? it->b : 0xFFFF;
                for (uint32_t c = it->a; c <= top && c < 0x10000; c++) bmp_set_folded(C->bmp, u_lower(c));
                if (it->b >= 0x10000) {
                    k.u[2 * nu] = it->a;
                    k.u[2 * nu + 1] = it->b;
                    nu++;
                    hascased = 1;
                } else {
                    for (uint32_t c = it->a; c <= it->b && !hascased; c++) hascased = u_iscased(c);
                }
            }
        }
        k.fold = (uint8_t)hascased;
        k.nl = nl;
        k.nu = nu;
        if (bmp_runs(C, &k)) return -1;
    }
    return class_add(C, &k, index);
}

static int class_add(comp *C, cls *k, uint32_t *index) {
    for (uint32_t c = 0; c < 128; c++)
        if (cls_eval(k, c)) k->ascii[c >> 5] |= 1u << (c & 31);
    if (C->ncl == C->capcl) {
        uint32_t cap = C->capcl ? C->capcl * 2 : 8;
        cls *v = palloc(C->p, cap * sizeof *v);
        if (!v) return -1;
        if (C->ncl) memcpy(v, C->cl, C->ncl * sizeof *v);
        C->cl = v;
        C->capcl = cap;
    }
    C->cl[C->ncl] = *k;
    *index = C->ncl++;
    return 0;
}

/* A case-insensitive literal with re._casefix equivalents: sre's IN_UNI_IGNORE {lo, equivalents...}. */
static int folded_literal_class(comp *C, uint32_t lo, int neg, uint32_t *index) {
    const uint32_t *fx = u_fixes(lo);
    cls k;
    memset(&k, 0, sizeof k);
    k.fold = 1;
    k.neg = (uint8_t)neg;
    k.r = palloc(C->p, 6 * sizeof(uint32_t));
    if (!k.r) return -1;
    k.r[0] = k.r[1] = lo;
    k.nr = 1;
    for (uint32_t j = 0; fx && j < fx[1]; j++, k.nr++) k.r[2 * k.nr] = k.r[2 * k.nr + 1] = fx[2 + j];
    k.nr = pairs_normalize(k.r, k.nr);
    return class_add(C, &k, index);
}

/* A single-character matcher (2 words) for LIT/NLIT/ANY/IN under `flags`. */
static int emit_matcher(comp *C, const node *n, int flags) {
    uint32_t idx;
    switch (n->op) {
    case N_LIT: case N_NLIT: {
        int neg = n->op == N_NLIT;
        if (!(flags & F_I) || !u_iscased(n->c)) return emit2(C, neg ? I_NCHAR : I_CHAR, n->c);
        uint32_t lo = u_lower(n->c);
        if (!u_fixes(lo)) return emit2(C, neg ? I_NCHAR_IC : I_CHAR_IC, lo);
        if (folded_literal_class(C, lo, neg, &idx)) return -1;
        return emit2(C, I_CLASS, idx);
    }
    case N_ANY:
        return emit2(C, (flags & F_S) ? I_ANYALL : I_ANY, 0);
    default: { /* N_IN */
        node *in = (node *)n; /* the cache of its compiled class */
        if (in->cls_plus1 && (in->cls_flags & F_I) == (flags & F_I)) return emit2(C, I_CLASS, in->cls_plus1 - 1);
        if (class_build(C, n->items, n->nitems, n->neg, flags, &idx)) return -1;
        in->cls_plus1 = idx + 1;
        in->cls_flags = flags;
        return emit2(C, I_CLASS, idx);
    }
    }
}

static int combine_flags(int flags, int add, int del) {
    if (add & TYPE_FLAGS) flags &= ~TYPE_FLAGS;
    return (flags | add) & ~del;
}

/* _simple: a body that is one single-character item (possibly in a non-capturing group with flags). */
static const node *simple_item(const seq *body, int *flags) {
    while (body->n == 1) {
        const node *n = body->v[0];
        if (n->op == N_LIT || n->op == N_NLIT || n->op == N_ANY || n->op == N_IN) return n;
        if (n->op != N_SUB || n->group) return NULL;
        *flags = combine_flags(*flags, n->add, n->del);
        body = n->body;
    }
    return NULL;
}

static int compile_seq(comp *C, const seq *s, int flags);

static uint32_t here(const comp *C) { return C->n; }

static int compile_node(comp *C, const node *n, int flags) {
    parser *p = C->p;
    switch (n->op) {
    case N_LIT: case N_NLIT: case N_ANY: case N_IN:
        return emit_matcher(C, n, flags);
    case N_AT: {
        uint32_t kind = n->c;
        if (flags & F_M) kind = kind == AT_BEG ? AT_BEG_LINE : kind == AT_END ? AT_END_LINE : kind;
        return emit2(C, I_AT, kind);
    }
    case N_BRANCH: {
        uint32_t *ends = palloc(p, n->nalts * sizeof *ends), start = here(C);
        if (!ends || emit(C, I_BRANCH) || emit(C, (uint32_t)C->in_repeat) || emit(C, n->nalts)) return -1;
        for (uint32_t i = 0; i < n->nalts; i++)
            if (emit(C, 0)) return -1;
        for (uint32_t i = 0; i < n->nalts; i++) {
            C->code[start + 3 + i] = here(C);
            if (compile_seq(C, n->alts[i], flags)) return -1;
            ends[i] = here(C);
            if (emit2(C, I_JMP, 0)) return -1;
        }
        for (uint32_t i = 0; i < n->nalts; i++) C->code[ends[i] + 1] = here(C);
        return 0;
    }
    case N_SUB: {
        int f = combine_flags(flags, n->add, n->del);
        if (n->group && emit2(C, I_MARK, 2 * ((uint32_t)n->group - 1))) return -1;
        if (compile_seq(C, n->body, f)) return -1;
        if (n->group && emit2(C, I_MARK, 2 * ((uint32_t)n->group - 1) + 1)) return -1;
        return 0;
    }
    case N_REP: {
        int f = flags;
        const node *item = simple_item(n->body, &f);
        if (item) {
            if (emit(C, I_STAR) || emit(C, (uint32_t)n->kind) || emit(C, n->min) || emit(C, n->max) ||
                emit(C, (uint32_t)C->in_repeat))
                return -1;
            return emit_matcher(C, item, f);
        }
        uint32_t r = C->nrep++, outer = 0, inner = 0;
        if (n->kind == REP_POSS) {
            outer = C->natom++;
            inner = C->natom++;
            if (emit2(C, I_ATOM_START, outer)) return -1;
        }
        if (emit2(C, I_REP_INIT, r)) return -1;
        uint32_t until = here(C);
        if (emit(C, n->kind == REP_LAZY ? I_UNTIL_L : I_UNTIL_G) || emit(C, r) || emit(C, n->min) ||
            emit(C, n->max) || emit(C, 0) || emit(C, 0) || (n->kind == REP_LAZY && emit(C, (uint32_t)C->in_repeat)))
            return -1;
        C->code[until + 4] = here(C);
        if (n->kind == REP_POSS && emit2(C, I_ATOM_START, inner)) return -1;
        /* a possessive repeat is no repeat context for sre (it sets no state->repeat) */
        int outer_in_repeat = C->in_repeat;
        if (n->kind != REP_POSS) C->in_repeat = 1;
        int failed = compile_seq(C, n->body, flags);
        C->in_repeat = outer_in_repeat;
        if (failed) return -1;
        if (n->kind == REP_POSS && emit2(C, I_ATOM_END, inner)) return -1;
        if (emit2(C, I_JMP, until)) return -1;
        C->code[until + 5] = here(C);
        if (n->kind == REP_POSS && emit2(C, I_ATOM_END, outer)) return -1;
        return 0;
    }
    case N_ATOMIC: {
        uint32_t a = C->natom++;
        if (emit2(C, I_ATOM_START, a) || compile_seq(C, n->body, flags)) return -1;
        return emit2(C, I_ATOM_END, a);
    }
    case N_ASSERT: {
        uint32_t w = 0;
        if (n->kind < 0) {
            width x = seq_width(p, n->body);
            if (x.lo > 0xFFFFFFFFu) {
                perr_nopos(p, "looks too much behind");
                return -1;
            }
            if (x.lo != x.hi) {
                perr_nopos(p, "look-behind requires fixed-width pattern");
                return -1;
            }
            w = (uint32_t)x.lo;
        }
        uint32_t a = C->natom++, start = here(C);
        if (emit(C, I_LOOK_START) || emit(C, a) || emit(C, (uint32_t)(n->neg | (n->kind < 0 ? 2 : 0))) ||
            emit(C, w) || emit(C, 0) || emit(C, (uint32_t)C->in_repeat))
            return -1;
        if (compile_seq(C, n->body, flags) || emit(C, I_LOOK_END) || emit(C, a) || emit(C, (uint32_t)n->neg))
            return -1;
        C->code[start + 4] = here(C);
        return 0;
    }
    case N_GREF:
        return emit(C, I_BREF) || emit(C, n->c) || emit(C, (flags & F_I) ? 1 : 0);
    case N_COND: {
        uint32_t start = here(C);
        if (emit(C, I_COND) || emit(C, n->c) || emit(C, 0) || compile_seq(C, n->body, flags)) return -1;
        if (!n->no) {
            C->code[start + 2] = here(C);
            return 0;
        }
        uint32_t jmp = here(C);
        if (emit2(C, I_JMP, 0)) return -1;
        C->code[start + 2] = here(C);
        if (compile_seq(C, n->no, flags)) return -1;
        C->code[jmp + 1] = here(C);
        return 0;
    }
    default:
        return -1;
    }
}

static int exact_literal(const node *n, int flags) {
    return n->op == N_LIT && (!(flags & F_I) || !u_iscased(n->c));
}

static int compile_seq(comp *C, const seq *s, int flags) {
    for (uint32_t i = 0; i < s->n; i++) {
        if (exact_literal(s->v[i], flags)) { /* a run of literals: one byte comparison */
            uint32_t off = C->nstr, j = i;
            while (j < s->n && exact_literal(s->v[j], flags))
                if (str_put(C, s->v[j++]->c)) return -1;
            if (emit(C, I_STR) || emit(C, off) || emit(C, C->nstr - off)) return -1;
            i = j - 1;
            continue;
        }
        if (compile_node(C, s->v[i], flags)) return -1;
    }
    return 0;
}

/* ---- what a match can start with (for the search loop) */

static void set_all(uint8_t *set) { memset(set, 0xFF, 32); }
static void set_byte(uint8_t *set, uint32_t b) { set[b >> 3] |= (uint8_t)(1u << (b & 7)); }
static void set_non_ascii(uint8_t *set) {
    for (uint32_t b = 0xC2; b <= 0xF4; b++) set_byte(set, b);
}

/* Adds the first bytes of what `s` matches; returns 1 when it may match the empty string. */
static int first_seq(comp *C, const seq *s, int flags, uint8_t *set);

static int first_node(comp *C, const node *n, int flags, uint8_t *set) {
    switch (n->op) {
    case N_LIT:
        if (exact_literal(n, flags)) {
            uint8_t u[4];
            u8_encode(n->c, u);
            set_byte(set, u[0]);
            return 0;
        }
        /* fallthrough */
    case N_NLIT: case N_ANY: case N_IN: {
        /* the ASCII bytes the matcher accepts, and any non-ASCII lead byte */
        uint32_t mark = C->n;
        if (emit_matcher(C, n, flags)) {
            set_all(set);
            return 0;
        }
        const uint32_t *m = C->code + mark;
        for (uint32_t c = 0; c < 128; c++) {
            uint32_t lc = u_lower(c);
            int ok;
            switch (m[0]) {
            case I_CHAR: ok = c == m[1]; break;
            case I_NCHAR: ok = c != m[1]; break;
            case I_CHAR_IC: ok = lc == m[1]; break;
            case I_NCHAR_IC: ok = lc != m[1]; break;
            case I_ANY: ok = c != '\n'; break;
            case I_ANYALL: ok = 1; break;
            default: ok = cls_match(&C->cl[m[1]], c); break;
            }
            if (ok) set_byte(set, c);
        }
        set_non_ascii(set);
        C->n = mark; /* the matcher was only needed here (its class stays, unused) */
        return 0;
    }
    case N_SUB:
        return first_seq(C, n->body, combine_flags(flags, n->add, n->del), set);
    case N_ATOMIC:
        return first_seq(C, n->body, flags, set);
    case N_BRANCH: {
        int empty = 0;
        for (uint32_t i = 0; i < n->nalts; i++) empty |= first_seq(C, n->alts[i], flags, set);
        return empty;
    }
    case N_REP: {
        int empty = first_seq(C, n->body, flags, set);
        return empty || n->min == 0;
    }
    case N_AT: case N_ASSERT: /* zero-width: what follows decides */
        return 1;
    default: /* backreferences, conditionals */
        set_all(set);
        return 1;
    }
}

static int first_seq(comp *C, const seq *s, int flags, uint8_t *set) {
    for (uint32_t i = 0; i < s->n; i++)
        if (!first_node(C, s->v[i], flags, set)) return 0;
    return 1;
}

/* ---------------------------------------------------------------------------------------------------------
 * re_compile */

static const char *format_error(parser *p) {
    if (p->emsg.oom) return "out of memory";
    if (!p->has_pos) {
        sb_putc(&p->emsg, 0);
        return p->emsg.oom ? "out of memory" : p->emsg.p;
    }
    sbuf *m = &p->emsg;
    sb_puts(m, " at position ");
    sb_putu(m, p->epos);
    int multiline = 0;
    size_t line = 1, last_nl = NONE;
    for (size_t i = 0; i < p->n; i++) {
        if (p->s[i] != '\n') continue;
        multiline = 1;
        if (i < p->epos) {
            line++;
            last_nl = i;
        }
    }
    if (multiline) {
        sb_puts(m, " (line ");
        sb_putu(m, line);
        sb_puts(m, ", column ");
        sb_putu(m, last_nl == NONE ? p->epos + 1 : p->epos - last_nl);
        sb_putc(m, ')');
    }
    sb_putc(m, 0);
    return m->oom ? "out of memory" : m->p;
}

re_prog *re_compile(const char *pattern, size_t len, int flags, const char **error) {
    parser P;
    memset(&P, 0, sizeof P);
    P.lookbehindgroups = -1;
    *error = "out of memory";
    uint32_t *cps = vg_alloc((len ? len : 1) * sizeof *cps);
    if (!cps) return NULL;
    const uint8_t *src = (const uint8_t *)pattern;
    size_t n = 0;
    for (size_t i = 0; i < len;) cps[n++] = u8_decode(src, i, len, &i);
    P.s = cps;
    P.n = n;
    P.flags = ((flags & RE_IGNORECASE) ? F_I : 0) | ((flags & RE_MULTILINE) ? F_M : 0) |
              ((flags & RE_DOTALL) ? F_S : 0);
    P.ngroups = 0;
    if (group_open(&P, NULL, 0) < 0) return NULL; /* group 0, never closed, like Python's */

    tk_advance(&P);
    seq *top = parse_alt(&P, P.flags & F_X, 0);
    if (!P.err && P.next.k != 0) perr(&P, "unbalanced parenthesis", 0);
    for (uint32_t i = 0; !P.err && i < P.nref; i++) {
        if (P.refg[i] >= P.ngroups) {
            sbuf *m = perr_pos(&P, P.refpos[i]);
            if (m) {
                sb_puts(m, "invalid group reference ");
                sb_putu(m, P.refg[i]);
            }
        }
    }
    comp C;
    memset(&C, 0, sizeof C);
    C.p = &P;
    int cflags = P.flags | F_U;
    if (!P.err && top) {
        if (compile_seq(&C, top, cflags) || emit(&C, I_MATCH)) {
            if (!P.err) perr_nopos(&P, "out of memory");
        }
    }
    if (P.err) {
        *error = format_error(&P);
        return NULL;
    }
    if (P.unsup) {
        sbuf m = {0};
        sb_puts(&m, "unsupported: ");
        sb_puts(&m, P.unsup_what);
        sb_puts(&m, " at position ");
        sb_putu(&m, P.unsup_pos);
        sb_putc(&m, 0);
        *error = m.oom ? "out of memory" : m.p;
        return NULL;
    }

    re_prog *prog = vg_alloc(sizeof *prog);
    if (!prog) return NULL;
    memset(prog, 0, sizeof *prog);
    prog->nmarks = 2 * (P.ngroups - 1);
    prog->rc = 0;
    prog->rl = prog->rc + C.nrep;
    prog->ra = prog->rl + C.nrep;
    prog->nregs = prog->ra + C.natom;
    prog->minw = seq_width(&P, top).lo;
    /* search helpers: anchoring, a literal prefix, the possible first bytes */
    const node *head = top->n ? top->v[0] : NULL;
    prog->anchored = head && head->op == N_AT && (head->c == AT_BEG_STR || (head->c == AT_BEG && !(cflags & F_M)));
    uint32_t np = 0;
    while (np < top->n && exact_literal(top->v[np], cflags)) np++;
    if (np) {
        prog->prefix = vg_alloc(4 * np);
        if (!prog->prefix) return NULL;
        for (uint32_t i = 0; i < np; i++)
            prog->nprefix += (uint32_t)u8_encode(top->v[i]->c, prog->prefix + prog->nprefix);
    }
    uint32_t keep = C.n;
    uint8_t set[32];
    memset(set, 0, sizeof set);
    if (!first_seq(&C, top, cflags, set)) {
        int all = 1;
        for (int i = 0; i < 32; i++) all &= set[i] == 0xFF;
        if (!all) {
            prog->use_first = 1;
            memcpy(prog->first, set, sizeof set);
        }
    }
    if (P.err) { /* out of memory while looking */
        *error = "out of memory";
        return NULL;
    }
    C.n = keep;
    prog->code = C.code;
    prog->str = C.str;
    prog->cl = C.cl;
    *error = NULL;
    return prog;
}

/* ---------------------------------------------------------------------------------------------------------
 * The VM
 *
 * A backtracking machine with an explicit stack, whose entries are choice points (where to resume), undo
 * records of registers (repeat counters and positions, atomic barriers), barriers of atomic groups and
 * lookarounds, and capture marks saved with a choice point. Captures follow sre exactly, since
 * backreferences and conditionals can see the difference: a failure does not undo the marks set on its way;
 * a choice point restores `lastmark` (marks above it count as unset) and, where sre saves them (inside a
 * repeat, and around each extra iteration of a greedy repeat), the marks themselves. */

enum {
    BT_CHOICE,
    BT_UNDO,     /* register a had value b */
    BT_UNDO_REP, /* repeat pc had count a and last position b */
    BT_DATA,
    BT_BAR_ATOM,
    BT_BAR_POS,
    BT_BAR_NEG,
    BT_BRANCH,
    BT_STAR_G,
    BT_STAR_L,
    BT_LAZY
};

typedef struct {
    uint32_t type, pc;
    int32_t lastmark; /* choice points: sre's saved lastmark */
    uint32_t ndata;   /* choice points: the BT_DATA entries just below, holding the saved marks */
    size_t a, b;
} bt;

typedef struct {
    const re_prog *P;
    const uint8_t *t;
    size_t len;
    int full;
    size_t *regs;
    size_t *marks;
    int32_t lastmark;
    bt *st;
    size_t sp, cap;
    size_t end;
} vm;

static NOINLINE int vm_grow(vm *m, size_t need) {
    size_t cap = m->cap * 2;
    while (cap < m->sp + need) cap *= 2;
    bt *st = vg_alloc(cap * sizeof *st);
    if (!st) return -1;
    memcpy(st, m->st, m->sp * sizeof *st);
    m->st = st;
    m->cap = cap;
    return 0;
}

static inline bt *vm_push(vm *m, uint32_t type, uint32_t pc, size_t a, size_t b) {
    if (m->sp == m->cap && vm_grow(m, 1)) return NULL;
    bt *e = &m->st[m->sp++];
    e->type = type;
    e->pc = pc;
    e->lastmark = m->lastmark;
    e->ndata = 0;
    e->a = a;
    e->b = b;
    return e;
}

/* A choice point saving lastmark (sre's LASTMARK_SAVE), and the marks when `snap` (sre's MARK_PUSH). */
static bt *vm_choice(vm *m, uint32_t type, uint32_t pc, size_t a, size_t b, uint32_t snap) {
    uint32_t nd = 0;
    if (snap && m->lastmark >= 0) {
        size_t n = (size_t)m->lastmark + 1;
        nd = (uint32_t)((n + 1) / 2);
        if (m->sp + nd + 1 > m->cap && vm_grow(m, nd + 1)) return NULL;
        for (size_t i = 0; i < n; i += 2) {
            bt *d = &m->st[m->sp++];
            d->type = BT_DATA;
            d->a = m->marks[i];
            d->b = i + 1 < n ? m->marks[i + 1] : NONE;
        }
    }
    bt *e = vm_push(m, type, pc, a, b);
    if (e) e->ndata = nd;
    return e;
}

/* sre's LASTMARK_RESTORE, with MARK_POP_KEEP when the marks were saved. */
static void vm_restore(vm *m, const bt *e) {
    m->lastmark = e->lastmark;
    const bt *d = e - e->ndata;
    for (uint32_t i = 0; i < e->ndata; i++) {
        m->marks[2 * i] = d[i].a;
        if ((int32_t)(2 * i + 1) <= e->lastmark) m->marks[2 * i + 1] = d[i].b;
    }
}

/* Removes the top entry with its saved marks. */
static void vm_drop(vm *m) { m->sp -= 1 + (size_t)m->st[m->sp - 1].ndata; }

#define PUSH(ty, pc_, a_, b_)                                                                                   \
    do {                                                                                                        \
        if (!vm_push(m, (ty), (pc_), (a_), (b_))) return -1;                                                    \
    } while (0)
#define CHOICE(ty, pc_, a_, b_, snap_)                                                                          \
    do {                                                                                                        \
        if (!vm_choice(m, (ty), (pc_), (a_), (b_), (snap_))) return -1;                                         \
    } while (0)
#define SETREG(i, v)                                                                                            \
    do {                                                                                                        \
        size_t i_ = (i);                                                                                        \
        PUSH(BT_UNDO, 0, i_, m->regs[i_]);                                                                      \
        m->regs[i_] = (v);                                                                                      \
    } while (0)
#define SETREP(r, count, last)                                                                                  \
    do {                                                                                                        \
        uint32_t r_ = (r);                                                                                      \
        PUSH(BT_UNDO_REP, r_, m->regs[P->rc + r_], m->regs[P->rl + r_]);                                        \
        m->regs[P->rc + r_] = (count);                                                                          \
        m->regs[P->rl + r_] = (last);                                                                           \
    } while (0)

static inline int match1(const vm *m, const uint32_t *mt, size_t pos, size_t *np) {
    if (pos >= m->len) return 0;
    uint32_t c = m->t[pos];
    size_t q = pos + 1;
    if (c >= 0x80) c = u8_decode(m->t, pos, m->len, &q);
    switch (mt[0]) {
    case I_CHAR:
        if (c != mt[1]) return 0;
        break;
    case I_NCHAR:
        if (c == mt[1]) return 0;
        break;
    case I_CHAR_IC:
        if (u_lower(c) != mt[1]) return 0;
        break;
    case I_NCHAR_IC:
        if (u_lower(c) == mt[1]) return 0;
        break;
    case I_ANY:
        if (c == '\n') return 0;
        break;
    case I_ANYALL:
        break;
    default:
        if (!cls_match(&m->P->cl[mt[1]], c)) return 0;
        break;
    }
    *np = q;
    return 1;
}

static int word_before(const vm *m, size_t pos) {
    if (!pos) return 0;
    size_t q, i = u8_prev(m->t, pos);
    return u_isword(u8_decode(m->t, i, m->len, &q));
}

static int word_at(const vm *m, size_t pos) {
    size_t q;
    return pos < m->len && u_isword(u8_decode(m->t, pos, m->len, &q));
}

static int at_ok(const vm *m, uint32_t kind, size_t pos) {
    switch (kind) {
    case AT_BEG: case AT_BEG_STR:
        return pos == 0;
    case AT_BEG_LINE:
        return pos == 0 || m->t[pos - 1] == '\n';
    case AT_END:
        return pos == m->len || (pos + 1 == m->len && m->t[pos] == '\n');
    case AT_END_LINE:
        return pos == m->len || m->t[pos] == '\n';
    case AT_END_STR:
        return pos == m->len;
    case AT_BOUND: /* sre: neither \b nor \B matches in an empty text */
        return m->len && word_before(m, pos) != word_at(m, pos);
    default: /* AT_NBOUND */
        return m->len && word_before(m, pos) == word_at(m, pos);
    }
}

static void vm_undo(vm *m, const bt *e) {
    if (e->type == BT_UNDO) {
        m->regs[e->a] = e->b;
    } else {
        m->regs[m->P->rc + e->pc] = e->a;
        m->regs[m->P->rl + e->pc] = e->b;
    }
}

/* The end of an atomic group or a positive lookaround: drops every choice point above the barrier at `bi`
 * (and the barrier), keeping the undo records for a later backtrack past the group. */
static void vm_cut(vm *m, size_t bi) {
    size_t j = bi;
    for (size_t i = bi + 1; i < m->sp; i++)
        if (m->st[i].type == BT_UNDO || m->st[i].type == BT_UNDO_REP) m->st[j++] = m->st[i];
    m->sp = j;
}

/* A negative lookaround whose subpattern matched: undoes the registers back to its barrier at `bi` and
 * drops the barrier without restoring the marks (sre's MARK_POP_DISCARD). */
static void vm_unwind(vm *m, size_t bi) {
    for (size_t i = m->sp; i-- > bi + 1;)
        if (m->st[i].type == BT_UNDO || m->st[i].type == BT_UNDO_REP) vm_undo(m, &m->st[i]);
    m->sp = bi + 1;
    vm_drop(m);
}

/* sre's test of a group for backreferences and conditionals. */
static int group_span(const vm *m, uint32_t g, size_t *s, size_t *e) {
    uint32_t ref = 2 * (g - 1);
    if ((int64_t)ref >= m->lastmark) return 0;
    *s = m->marks[ref];
    *e = m->marks[ref + 1];
    return *s != NONE && *e != NONE && *e >= *s;
}

/* Runs the program anchored at `pos`: 1 (m->end set), 0, or -1 when out of memory. */
static int vm_run(vm *m, size_t pos) {
    const re_prog *P = m->P;
    const uint32_t *code = P->code;
    const uint8_t *t = m->t;
    const size_t len = m->len;
    uint32_t pc = 0;
    m->sp = 0;
    m->lastmark = -1;
    for (;;) {
        switch (code[pc]) {
        case I_STR: {
            uint32_t n = code[pc + 2];
            if (len - pos < n || memcmp(t + pos, P->str + code[pc + 1], n)) goto fail;
            pos += n;
            pc += 3;
            continue;
        }
        case I_CHAR: case I_NCHAR: case I_CHAR_IC: case I_NCHAR_IC: case I_ANY: case I_ANYALL: case I_CLASS: {
            size_t np;
            if (!match1(m, code + pc, pos, &np)) goto fail;
            pos = np;
            pc += 2;
            continue;
        }
        case I_AT:
            if (!at_ok(m, code[pc + 1], pos)) goto fail;
            pc += 2;
            continue;
        case I_BRANCH:
            CHOICE(BT_BRANCH, pc, pos, 1, code[pc + 1]);
            pc = code[pc + 3];
            continue;
        case I_JMP:
            pc = code[pc + 1];
            continue;
        case I_MARK: {
            uint32_t i = code[pc + 1];
            if ((int32_t)i > m->lastmark) { /* marks skipped over become unset */
                for (int32_t j = m->lastmark + 1; j < (int32_t)i; j++) m->marks[j] = NONE;
                m->lastmark = (int32_t)i;
            }
            m->marks[i] = pos;
            pc += 2;
            continue;
        }
        case I_REP_INIT: {
            SETREP(code[pc + 1], NONE, NONE);
            pc += 2;
            continue;
        }
        case I_UNTIL_G: { /* sre's MAX_UNTIL */
            uint32_t r = code[pc + 1], min = code[pc + 2], max = code[pc + 3];
            size_t c = m->regs[P->rc + r] + 1; /* NONE + 1 == 0 */
            if (c < min) {
                SETREP(r, c, m->regs[P->rl + r]);
                pc = code[pc + 4];
                continue;
            }
            /* another iteration, unless it would start where the previous one did (zero-width protection) */
            if ((max == MAXREPEAT || c < max) && pos != m->regs[P->rl + r]) {
                CHOICE(BT_CHOICE, code[pc + 5], pos, 0, 1);
                SETREP(r, c, pos);
                pc = code[pc + 4];
                continue;
            }
            pc = code[pc + 5];
            continue;
        }
        case I_UNTIL_L: { /* sre's MIN_UNTIL: the tail first; another iteration when it fails */
            uint32_t r = code[pc + 1], min = code[pc + 2];
            size_t c = m->regs[P->rc + r] + 1;
            if (c < min) {
                SETREP(r, c, m->regs[P->rl + r]);
                pc = code[pc + 4];
                continue;
            }
            CHOICE(BT_LAZY, pc, pos, 0, code[pc + 6]);
            pc = code[pc + 5];
            continue;
        }
        case I_STAR: { /* a repeat of one character: sre's REPEAT_ONE, MIN_REPEAT_ONE, POSSESSIVE_REPEAT_ONE */
            uint32_t kind = code[pc + 1], min = code[pc + 2], max = code[pc + 3], snap = code[pc + 4];
            const uint32_t *mt = code + pc + 5;
            size_t p = pos, np, k = 0;
            if (kind == REP_LAZY) {
                for (; k < min; k++) {
                    if (!match1(m, mt, p, &np)) goto fail;
                    p = np;
                }
                CHOICE(BT_STAR_L, pc, p, k, snap);
                pos = p;
                pc += 7;
                continue;
            }
            size_t minpos = pos;
            if (mt[0] == I_ANYALL && max == MAXREPEAT) { /* .* with DOTALL: to the end */
                for (; p < len; k++) {
                    if (k == min) minpos = p;
                    p += (t[p] < 0x80) ? 1 : (t[p] < 0xE0) ? 2 : (t[p] < 0xF0) ? 3 : 4;
                }
                if (p > len) p = len;
            } else {
                for (; max == MAXREPEAT || k < max; k++) {
                    if (k == min) minpos = p;
                    if (!match1(m, mt, p, &np)) break;
                    p = np;
                }
            }
            if (k < min) goto fail;
            if (k == min) minpos = p;
            if (kind == REP_GREEDY) CHOICE(BT_STAR_G, pc, minpos, p, snap);
            pos = p;
            pc += 7;
            continue;
        }
        case I_ATOM_START: {
            size_t bi = m->sp;
            PUSH(BT_BAR_ATOM, 0, 0, 0);
            SETREG(P->ra + code[pc + 1], bi);
            pc += 2;
            continue;
        }
        case I_ATOM_END:
            vm_cut(m, m->regs[P->ra + code[pc + 1]]);
            pc += 2;
            continue;
        case I_LOOK_START: {
            uint32_t kind = code[pc + 2], w = code[pc + 3];
            size_t start = pos;
            if (kind & 2) { /* behind: step back w characters */
                uint32_t i = 0;
                if (w <= start)
                    for (; i < w && start; i++) start = u8_prev(t, start);
                if (i < w) {
                    if (kind & 1) { /* sre skips a negative lookbehind that cannot fit */
                        pc = code[pc + 4];
                        continue;
                    }
                    goto fail;
                }
            }
            if (kind & 1)
                CHOICE(BT_BAR_NEG, code[pc + 4], pos, 0, code[pc + 5]);
            else
                PUSH(BT_BAR_POS, 0, pos, 0);
            size_t bi = m->sp - 1;
            SETREG(P->ra + code[pc + 1], bi);
            pos = start;
            pc += 6;
            continue;
        }
        case I_LOOK_END: {
            size_t bi = m->regs[P->ra + code[pc + 1]];
            if (code[pc + 2]) { /* the negative assertion's subpattern matched: the assertion fails */
                vm_unwind(m, bi);
                goto fail;
            }
            pos = m->st[bi].a;
            vm_cut(m, bi);
            pc += 3;
            continue;
        }
        case I_BREF: {
            size_t s, e;
            if (!group_span(m, code[pc + 1], &s, &e)) goto fail;
            if (!code[pc + 2]) {
                if (len - pos < e - s || memcmp(t + pos, t + s, e - s)) goto fail;
                pos += e - s;
            } else {
                while (s < e) {
                    if (pos >= len) goto fail;
                    uint32_t a = u8_decode(t, s, len, &s), b = u8_decode(t, pos, len, &pos);
                    if (a != b && u_lower(a) != u_lower(b)) goto fail;
                }
            }
            pc += 3;
            continue;
        }
        case I_COND: {
            size_t s, e;
            pc = group_span(m, code[pc + 1], &s, &e) ? pc + 3 : code[pc + 2];
            continue;
        }
        case I_MATCH:
            if (m->full && pos != len) goto fail;
            m->end = pos;
            return 1;
        default:
            return 0;
        }
    fail:
        for (;;) {
            if (m->sp == 0) return 0;
            bt *e = &m->st[m->sp - 1];
            switch (e->type) {
            case BT_UNDO: case BT_UNDO_REP:
                vm_undo(m, e);
                m->sp--;
                continue;
            case BT_DATA: case BT_BAR_ATOM: case BT_BAR_POS:
                m->sp--;
                continue;
            case BT_CHOICE:  /* the tail of a greedy repeat whose extra iteration failed */
            case BT_BAR_NEG: /* the negative assertion's subpattern failed: the assertion holds */
                vm_restore(m, e);
                pc = e->pc;
                pos = e->a;
                vm_drop(m);
                break;
            case BT_BRANCH: { /* the next alternative */
                const uint32_t *br = code + e->pc;
                vm_restore(m, e);
                if (e->b >= br[2]) {
                    vm_drop(m);
                    continue;
                }
                pc = br[3 + e->b];
                pos = e->a;
                e->b++;
                break;
            }
            case BT_STAR_G: { /* give back one character */
                size_t minpos = e->a, np;
                uint32_t tail = e->pc + 7;
                vm_restore(m, e);
                if (e->b <= minpos) {
                    vm_drop(m);
                    continue;
                }
                np = u8_prev(t, e->b);
                if (code[tail] == I_STR) { /* skip the positions where the tail's first byte cannot match */
                    uint8_t fb = P->str[code[tail + 1]];
                    while (np > minpos && (np >= len || t[np] != fb)) np = u8_prev(t, np);
                    if (np >= len || t[np] != fb) {
                        vm_drop(m);
                        continue;
                    }
                }
                e->b = np;
                pc = tail;
                pos = np;
                break;
            }
            case BT_STAR_L: { /* take one more character */
                const uint32_t *star = code + e->pc;
                size_t np;
                vm_restore(m, e);
                if ((star[3] != MAXREPEAT && e->b >= star[3]) || !match1(m, star + 5, e->a, &np)) {
                    vm_drop(m);
                    continue;
                }
                pc = e->pc + 7;
                pos = np;
                e->a = np;
                e->b++;
                break;
            }
            default: { /* BT_LAZY: the tail failed; one more iteration of the lazy repeat */
                const uint32_t *u = code + e->pc;
                size_t p = e->a;
                vm_restore(m, e);
                vm_drop(m);
                uint32_t r = u[1], max = u[3];
                size_t c = m->regs[P->rc + r] + 1;
                if ((max != MAXREPEAT && c >= max) || p == m->regs[P->rl + r]) continue;
                SETREP(r, c, p);
                pc = u[4];
                pos = p;
                break;
            }
            }
            break;
        }
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * re_exec */

#define LOCAL_STACK 96
#define LOCAL_REGS 48

static size_t count_cp(const uint8_t *t, size_t from, size_t to) {
    size_t n = 0;
    for (size_t i = from; i < to; i++) n += (t[i] & 0xC0) != 0x80;
    return n;
}

int re_exec(const re_prog *prog, const char *text, size_t len, int fullmatch, size_t *start_cp, size_t *end_cp,
            size_t *start_byte, size_t *end_byte) {
    bt local_stack[LOCAL_STACK];
    size_t local_regs[LOCAL_REGS];
    vm m;
    uint32_t nwords = prog->nregs + prog->nmarks;
    m.P = prog;
    m.t = (const uint8_t *)text;
    m.len = len;
    m.full = fullmatch;
    m.st = local_stack;
    m.cap = LOCAL_STACK;
    m.sp = 0;
    m.regs = nwords <= LOCAL_REGS ? local_regs : vg_alloc(nwords * sizeof(size_t));
    if (!m.regs) return -1;
    m.marks = m.regs + prog->nregs;
    for (uint32_t i = 0; i < nwords; i++) m.regs[i] = NONE;

    const uint8_t *t = m.t;
    size_t s = 0;
    int r = 0;
    if (fullmatch) {
        r = len >= prog->minw ? vm_run(&m, 0) : 0;
    } else {
        for (;;) {
            if (len - s < prog->minw) break;
            if (prog->nprefix) {
                uint8_t b0 = prog->prefix[0];
                while (s < len && (t[s] != b0 || len - s < prog->nprefix ||
                                   memcmp(t + s, prog->prefix, prog->nprefix)))
                    s++;
                if (s >= len) break;
            } else if (prog->use_first) {
                while (s < len && !((prog->first[t[s] >> 3] >> (t[s] & 7)) & 1)) s++;
                if (s >= len) break;
            }
            r = vm_run(&m, s);
            if (r) break;
            if (s >= len || prog->anchored) break;
            s += (t[s] < 0x80) ? 1 : (t[s] < 0xE0) ? 2 : (t[s] < 0xF0) ? 3 : 4;
        }
    }
    if (r <= 0) return r;
    *start_byte = s;
    *end_byte = m.end;
    *start_cp = count_cp(t, 0, s);
    *end_cp = *start_cp + count_cp(t, s, m.end);
    return 1;
}

/* The runtime of Vigilo's native (C) evaluators: the component ABI of vigilo:evaluator@1.0.0, an arena,
 * a JSON reader and writer that follow Python's `json`, UTF-8 text helpers and the shared conventions of
 * the bundled evaluators (`field`, `value` / `expected_path`, evidence clipping), so that a native
 * evaluator gives the same results as its Python counterpart (`evaluators/bundled/_common`).
 *
 * An evaluator defines the four VG_* constants and `vg_evaluate`, and reports through `vg_pass`,
 * `vg_fail` and `vg_error`. Everything it allocates comes from the arena, which is emptied when the host
 * starts the next call (the host never calls `cabi_post_return`, see abi.c). */
#ifndef VIGILO_NATIVE_H
#define VIGILO_NATIVE_H

#include <stddef.h>
#include <stdint.h>

/* --- what an evaluator defines ---------------------------------------------------------------------- */

extern const char VG_NAME[];
extern const char VG_VERSION[];
extern const char VG_DESCRIPTION[];
extern const char VG_CONFIG_SCHEMA[]; /* JSON text */

typedef struct vg_str {
    const char *p;
    uint32_t n; /* bytes */
} vg_str;

typedef enum { J_NULL, J_BOOL, J_INT, J_FLOAT, J_STR, J_ARR, J_OBJ } vg_kind;

typedef struct vg_json vg_json;
typedef struct vg_member {
    vg_str key;
    vg_json *value;
} vg_member;

struct vg_json {
    vg_kind kind;
    union {
        int boolean;
        double number; /* J_FLOAT */
        vg_str text;   /* J_STR: the decoded string; J_INT: the digits as Python would print them */
        struct {
            vg_json **items;
            uint32_t n;
        } array;
        struct {
            vg_member *items; /* in document order; duplicate keys collapsed, the last value wins */
            uint32_t n;
        } object;
    } u;
};

typedef struct vg_input {
    vg_str case_id;
    vg_json *expected; /* NULL when the case has none (or it is JSON null) */
    int has_text;
    vg_str text;
    vg_json *structured; /* NULL when absent */
    vg_json *config;     /* an object (an absent or null config is {}) */
} vg_input;

/* Called once per evaluation, after the config passed `vg_config_check` (below). */
void vg_evaluate(const vg_input *in);
int vg_config_check(const vg_json *config);

/* --- results ---------------------------------------------------------------------------------------- */

enum { SEV_INFO, SEV_LOW, SEV_MEDIUM, SEV_HIGH, SEV_CRITICAL };

typedef struct vg_finding {
    int severity;
    const char *category;
    vg_str message;
    vg_str evidence; /* JSON text; p == NULL: none */
} vg_finding;

void vg_pass(void);
/* A failed binary measurement with findings (copied) and an explanation (p == NULL: none). */
void vg_fail(const vg_finding *findings, uint32_t count, vg_str explanation);
/* An evaluator-error; returns -1 so callers can `return vg_error(...)`. */
int vg_error(const char *code, vg_str message);

/* --- arena and text ---------------------------------------------------------------------------------- */

void *vg_alloc(size_t size); /* 8-aligned, never NULL (traps when memory runs out) */
vg_str vg_cstr(const char *s);
int vg_eq(vg_str a, const char *s);

typedef struct vg_buf {
    char *p;
    uint32_t n, cap;
} vg_buf;

void buf_put(vg_buf *b, const char *p, uint32_t n);
void buf_puts(vg_buf *b, const char *s);
void buf_putc(vg_buf *b, char c);
void buf_putu(vg_buf *b, uint64_t v);
void buf_str(vg_buf *b, vg_str s);
vg_str buf_done(vg_buf *b);

uint32_t utf8_len(vg_str s);                 /* code points */
vg_str utf8_head(vg_str s, uint32_t points); /* the first `points` code points */
uint32_t utf8_decode(const char *p, uint32_t *cp); /* bytes consumed (input is valid UTF-8) */
void utf8_put(vg_buf *b, uint32_t cp);
vg_str vg_casefold(vg_str s); /* Python's str.casefold() */
int vg_find(vg_str hay, vg_str needle); /* byte offset or -1 */

/* Python's `clip`: the text when it has at most `limit` code points, else its head + "... (N chars)". */
vg_str vg_clip(vg_str s, uint32_t limit);
#define VG_EVIDENCE_CHARS 200

/* --- JSON -------------------------------------------------------------------------------------------- */

vg_json *json_parse(vg_str text, const char **error);
vg_json *json_get(const vg_json *object, const char *key); /* NULL when absent or not an object */
/* json.dumps(value, sort_keys=True, ensure_ascii=False) */
void json_canonical(vg_buf *b, const vg_json *v);
vg_str json_canonical_str(const vg_json *v);
/* A JSON string literal (ensure_ascii=True, as the Python SDK writes evidence). */
void json_quote(vg_buf *b, vg_str s);
/* Python repr() of a str, e.g. for messages: 'it''s' -> "it's" */
void py_repr(vg_buf *b, vg_str s);

/* --- the bundled evaluators' conventions (vigilo_common.py) ------------------------------------------ */

/* resolve_expected: the expectation and where it came from; NULL after vg_error("missing_expected"). */
const vg_json *vg_expected(const vg_input *in, vg_str *source);
/* bad_expected: invalid_config when the expectation came from config, else invalid_expected. */
int vg_bad_expected(vg_str source, const char *message);
/* resolve_actual in "text" mode: 1 and *out on success; 0 when there is nothing to judge, after failing
 * the evaluation with the problem as its finding and explanation (as the Python evaluators all do). */
int vg_output_text(const vg_input *in, vg_str *out);
/* resolve_actual in "json" mode: the output text parsed as JSON (or the structured value as it is); 0 after
 * failing the evaluation, with an invalid_json finding when the text does not parse. */
int vg_output_json(const vg_input *in, const vg_json **out);
/* A string from the config, or the default when the key is absent. */
vg_str vg_config_str(const vg_json *config, const char *key, const char *fallback);
/* A boolean from the config, or the default when the key is absent. */
int vg_config_bool(const vg_json *config, const char *key, int fallback);
/* evidence_value(): a short value as it is, else its clipped canonical text. */
void vg_evidence_value(vg_buf *b, const vg_json *value);
/* Evidence: a JSON object written pair by pair, ensure_ascii as the Python SDK writes it. */
void ev_key(vg_buf *b, const char *key); /* opens the object on the first key */
void ev_string(vg_buf *b, const char *key, vg_str value);
vg_str ev_close(vg_buf *b);
/* json.dumps(value) (ensure_ascii, keys in document order) */
void json_ascii(vg_buf *b, const vg_json *v);

/* Config checks phrased the way vigilo_sdk.schema phrases them. The evaluator lists its properties (beyond
 * the common `field` and `expected_path`) with a checker each; `vg_config_check` walks the config's keys in
 * order, and unknown keys are refused, as `additionalProperties: false` does. */
typedef struct vg_problems {
    vg_buf text;
    uint32_t count;
} vg_problems;
typedef void (*vg_checker)(vg_problems *p, const char *key, const vg_json *value);
typedef struct vg_property {
    const char *key;
    vg_checker check;
} vg_property;
extern const vg_property VG_PROPERTIES[]; /* ends with {NULL, NULL} */

void cfg_problem(vg_problems *p, const char *key, const char *text); /* "$.key: text" ($ when key is NULL) */
void cfg_problem_at(vg_problems *p, vg_str path, const char *text);  /* "<path>: text" */
void cfg_key_path(vg_buf *b, const char *key);                       /* "$.key", or $["key"] when needed */
void cfg_show(vg_buf *b, const vg_json *value);                         /* _show(): canonical, <= 80 chars */
int cfg_type(vg_problems *p, const char *key, const vg_json *value, vg_kind kind); /* 1 when of the type */
void cfg_string(vg_problems *p, const char *key, const vg_json *value);
void cfg_boolean(vg_problems *p, const char *key, const vg_json *value);
void cfg_enum(vg_problems *p, const char *key, const vg_json *value, const char *const *options);
int json_is(const vg_json *value, const char *text); /* a JSON string equal to text */

#endif

/* The component model's canonical ABI for the `evaluator` world of vigilo:evaluator@1.0.0, by hand.
 *
 * Layouts (canonical ABI, wasm32): `evaluation-input` is 132 bytes, passed by pointer because it flattens
 * to more than 16 values; the host allocates it in our memory through `cabi_realloc`. `evaluate` returns a
 * pointer to a 64-byte `result<evaluation, evaluator-error>` and `describe` one to a 36-byte
 * `evaluator-info`. Strings are (pointer, length) pairs of UTF-8.
 *
 * Memory is one bump arena. The host reads a result right after the call returns and never calls
 * `cabi_post_return` (wasmtime-py does not), so the arena is emptied lazily: the first `cabi_realloc` after
 * a call has returned starts the next call's allocations from the bottom again. An instance that is reused
 * for many cases (a pure evaluator under `instance_reuse`) therefore never grows.
 */
#include "vigilo_native.h"

#include <string.h>

extern unsigned char __heap_base;

static uintptr_t arena_top;    /* next free byte; 0 before the first allocation */
static uintptr_t arena_limit;  /* end of the memory we have */
static int returned;           /* a call has returned: the next allocation empties the arena */

static void arena_reset(void) {
    arena_top = (uintptr_t)&__heap_base;
    returned = 0;
}

void *vg_alloc(size_t size) {
    if (arena_top == 0 || returned) arena_reset();
    if (arena_limit == 0) arena_limit = __builtin_wasm_memory_size(0) * 65536u;
    uintptr_t start = (arena_top + 7u) & ~(uintptr_t)7u;
    if (size > arena_limit || start > arena_limit - size) {
        size_t need = start + size - arena_limit;
        size_t pages = (need + 65535u) / 65536u;
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) __builtin_trap(); /* memory limit */
        arena_limit += pages * 65536u;
    }
    arena_top = start + size;
    return (void *)start;
}

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *old, size_t old_size, size_t align, size_t size) {
    (void)align; /* the contract needs at most 8, which the arena always gives */
    if (returned) {
        arena_reset();
        old = NULL; /* memory of a finished call is never resized */
        old_size = 0;
    }
    void *p = vg_alloc(size ? size : 1);
    if (old && old_size) memcpy(p, old, old_size < size ? old_size : size);
    return p;
}

/* --- reading the input --------------------------------------------------------------------------------- */

#define U32(base, off) (*(const uint32_t *)((base) + (off)))
#define U8(base, off) (*(const uint8_t *)((base) + (off)))

static vg_str str_at(const uint8_t *base, uint32_t off) {
    vg_str s = {(const char *)(uintptr_t)U32(base, off), U32(base, off + 4)};
    return s;
}

static int opt_str_at(const uint8_t *base, uint32_t off, vg_str *out) {
    if (!U8(base, off)) return 0;
    *out = str_at(base, off + 4);
    return 1;
}

/* --- writing the result -------------------------------------------------------------------------------- */

static _Alignas(8) uint8_t ret_area[64];

#define PUT32(off, v) (*(uint32_t *)(ret_area + (off)) = (uint32_t)(v))
#define PUT8(off, v) (ret_area[(off)] = (uint8_t)(v))

static int result_set; /* 0: nothing yet, 1: evaluation, 2: error */

static void put_str(uint8_t *base, uint32_t off, vg_str s) {
    *(uint32_t *)(base + off) = (uint32_t)(uintptr_t)s.p;
    *(uint32_t *)(base + off + 4) = s.n;
}

static void put_opt_str(uint8_t *base, uint32_t off, vg_str s) {
    base[off] = s.p != NULL;
    if (s.p) put_str(base, off + 4, s);
}

void vg_pass(void) {
    static const vg_str none = {NULL, 0};
    vg_fail(NULL, 0, none);
    PUT8(24, 1); /* binary(true) */
}

void vg_fail(const vg_finding *findings, uint32_t count, vg_str explanation) {
    memset(ret_area, 0, sizeof ret_area);
    PUT8(0, 0);  /* ok */
    PUT8(8, 0);  /* outcome: completed */
    PUT8(16, 0); /* measurement: binary */
    PUT8(24, 0); /* false */
    uint8_t *list = count ? vg_alloc(32u * count) : NULL;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *f = list + 32u * i;
        memset(f, 0, 32);
        f[0] = (uint8_t)findings[i].severity;
        put_str(f, 4, vg_cstr(findings[i].category));
        put_str(f, 12, findings[i].message);
        put_opt_str(f, 20, findings[i].evidence);
    }
    PUT32(40, (uintptr_t)list);
    PUT32(44, count);
    put_opt_str(ret_area, 48, explanation);
    result_set = 1;
}

int vg_error(const char *code, vg_str message) {
    memset(ret_area, 0, sizeof ret_area);
    PUT8(0, 1); /* err */
    put_str(ret_area, 8, vg_cstr(code));
    put_str(ret_area, 16, message);
    result_set = 2;
    return -1;
}

/* --- exports ------------------------------------------------------------------------------------------- */

static vg_json *parse_field(vg_str text, const char *what, int *failed) {
    const char *problem = NULL;
    vg_json *v = json_parse(text, &problem);
    if (v == NULL) {
        vg_buf b = {0};
        buf_puts(&b, what);
        buf_puts(&b, " is not valid JSON: ");
        buf_puts(&b, problem);
        vg_error("invalid_input", buf_done(&b));
        *failed = 1;
    }
    return v;
}

__attribute__((export_name("evaluate"))) uint8_t *evaluate(const uint8_t *in) {
    vg_input input;
    memset(&input, 0, sizeof input);
    int failed = 0;
    result_set = 0;
    input.case_id = str_at(in, 20);
    vg_str text;
    if (opt_str_at(in, 36, &text)) {
        input.expected = parse_field(text, "expected", &failed);
        if (input.expected && input.expected->kind == J_NULL) input.expected = NULL;
    }
    input.has_text = opt_str_at(in, 76, &input.text);
    if (!failed && opt_str_at(in, 88, &text)) {
        input.structured = parse_field(text, "output.structured", &failed);
        if (input.structured && input.structured->kind == J_NULL) input.structured = NULL;
    }
    if (!failed) {
        vg_str config_text = str_at(in, 124);
        input.config = parse_field(config_text, "config", &failed);
        if (input.config && input.config->kind == J_NULL) {
            input.config = vg_alloc(sizeof(vg_json));
            memset(input.config, 0, sizeof(vg_json));
            input.config->kind = J_OBJ;
        }
    }
    if (!failed && vg_config_check(input.config) == 0) vg_evaluate(&input);
    if (!result_set) vg_error("internal", vg_cstr("the evaluator returned no result"));
    returned = 1;
    return ret_area;
}

__attribute__((export_name("describe"))) uint8_t *describe(void) {
    static _Alignas(4) uint8_t info[36];
    put_str(info, 0, vg_cstr(VG_NAME));
    put_str(info, 8, vg_cstr(VG_VERSION));
    put_str(info, 16, vg_cstr(VG_DESCRIPTION));
    put_opt_str(info, 24, vg_cstr(VG_CONFIG_SCHEMA));
    returned = 1;
    return info;
}

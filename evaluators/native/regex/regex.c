/* vigilo/regex 2.0.0: evaluators/bundled/regex (1.0.0, CPython's `re`) in C, on the engine in re_engine.c.
 * The same results for every pattern the engine supports; a pattern it does not support (see re_engine.c)
 * is an `invalid_config` error naming the construct, which is why this is a new major version. */
#include <string.h>

#include "re_engine.h"
#include "vigilo_native.h"

const char VG_NAME[] = "vigilo/regex";
const char VG_VERSION[] = "2.0.0";
const char VG_DESCRIPTION[] =
    "Passes when the output matches the pattern (Python `re` syntax, compiled natively), or does not when negated.";

static const char *const FLAG_NAMES[] = {"dotall", "ignorecase", "multiline", NULL};
static const int FLAG_BITS[] = {RE_DOTALL, RE_IGNORECASE, RE_MULTILINE};

static void check_flags(vg_problems *p, const char *key, const vg_json *value) {
    if (!cfg_type(p, key, value, J_ARR)) return;
    uint32_t n = value->u.array.n;
    for (uint32_t i = 0; i < n; i++) {
        int duplicate = 0;
        for (uint32_t j = 0; j < i && !duplicate; j++) {
            vg_str a = json_canonical_str(value->u.array.items[i]), b = json_canonical_str(value->u.array.items[j]);
            duplicate = a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
            if (duplicate) {
                vg_buf m = {0};
                buf_puts(&m, "items ");
                buf_putu(&m, j);
                buf_puts(&m, " and ");
                buf_putu(&m, i);
                buf_puts(&m, " are equal (");
                cfg_show(&m, value->u.array.items[i]);
                buf_puts(&m, "); items must be unique");
                buf_putc(&m, '\0');
                cfg_problem(p, key, m.p);
            }
        }
        if (duplicate) break;
    }
    for (uint32_t i = 0; i < n; i++) {
        const vg_json *item = value->u.array.items[i];
        int known = 0;
        for (const char *const *name = FLAG_NAMES; *name && !known; name++) known = json_is(item, *name);
        if (known) continue;
        vg_buf path = {0}, m = {0};
        cfg_key_path(&path, key);
        buf_putc(&path, '[');
        buf_putu(&path, i);
        buf_putc(&path, ']');
        cfg_show(&m, item);
        buf_puts(&m, " is not one of [\"dotall\", \"ignorecase\", \"multiline\"]");
        buf_putc(&m, '\0');
        cfg_problem_at(p, buf_done(&path), m.p);
    }
}

static void check_mode(vg_problems *p, const char *key, const vg_json *value) {
    static const char *const modes[] = {"search", "fullmatch", NULL};
    cfg_enum(p, key, value, modes);
}

const vg_property VG_PROPERTIES[] = {
    {"value", cfg_string},
    {"flags", check_flags},
    {"mode", check_mode},
    {"negate", cfg_boolean},
    {NULL, NULL},
};

void vg_evaluate(const vg_input *in) {
    vg_str source;
    const vg_json *expected = vg_expected(in, &source);
    if (expected == NULL) return;
    if (expected->kind != J_STR) {
        vg_bad_expected(source, "the pattern must be a string");
        return;
    }
    vg_str pattern = expected->u.text;
    const vg_json *flags = json_get(in->config, "flags");
    int bits = 0;
    for (uint32_t i = 0; flags && i < flags->u.array.n; i++)
        for (int k = 0; FLAG_NAMES[k]; k++)
            if (json_is(flags->u.array.items[i], FLAG_NAMES[k])) bits |= FLAG_BITS[k];
    const char *problem_text = NULL;
    re_prog *prog = re_compile(pattern.p, pattern.n, bits, &problem_text);
    if (prog == NULL) {
        vg_buf m = {0};
        buf_str(&m, source);
        buf_puts(&m, ": invalid pattern ");
        py_repr(&m, pattern);
        buf_puts(&m, ": ");
        buf_puts(&m, problem_text);
        vg_error("invalid_config", buf_done(&m));
        return;
    }
    vg_str output;
    if (!vg_output_text(in, &output)) return;
    vg_str mode = vg_config_str(in->config, "mode", "search");
    int fullmatch = vg_eq(mode, "fullmatch");
    size_t start_cp, end_cp, start_byte, end_byte;
    int matched = re_exec(prog, output.p, output.n, fullmatch, &start_cp, &end_cp, &start_byte, &end_byte);
    if (matched < 0) __builtin_trap(); /* out of memory: the host reports the memory limit */
    int negate = vg_config_bool(in->config, "negate", 0);
    if (matched != negate) {
        vg_pass();
        return;
    }
    vg_buf evidence = {0}, message = {0};
    ev_string(&evidence, "pattern", vg_clip(pattern, VG_EVIDENCE_CHARS));
    ev_string(&evidence, "mode", mode);
    ev_key(&evidence, "flags");
    if (flags) json_ascii(&evidence, flags);
    else buf_puts(&evidence, "[]");
    ev_string(&evidence, "output", vg_clip(output, VG_EVIDENCE_CHARS));
    vg_finding finding = {SEV_MEDIUM, "pattern_mismatch", {0}, {0}};
    if (negate) {
        vg_str match = {output.p + start_byte, (uint32_t)(end_byte - start_byte)};
        ev_string(&evidence, "match", vg_clip(match, VG_EVIDENCE_CHARS));
        ev_key(&evidence, "at");
        buf_putu(&evidence, start_cp);
        buf_puts(&message, "output matches the forbidden pattern at character ");
        buf_putu(&message, start_cp);
        finding.category = "forbidden_pattern";
    } else {
        buf_puts(&message, fullmatch ? "output does not fully match the pattern" : "output does not match the pattern");
    }
    finding.message = buf_done(&message);
    finding.evidence = ev_close(&evidence);
    vg_fail(&finding, 1, finding.message);
}

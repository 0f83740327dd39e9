/* vigilo/contains 1.1.0: evaluators/bundled/contains (1.0.0) in C, with the same results.
 * The output contains all / any / none of the expected substrings. */
#include <string.h>

#include "vigilo_native.h"

const char VG_NAME[] = "vigilo/contains";
const char VG_VERSION[] = "1.1.0";
const char VG_DESCRIPTION[] = "Passes when the output contains all (or any, or none) of the expected substrings.";

#define MAX_LISTED 20

static void check_value(vg_problems *p, const char *key, const vg_json *value) {
    if (value->kind == J_STR) return;
    const vg_json *bad_item = NULL;
    if (value->kind == J_ARR) {
        for (uint32_t k = 0; k < value->u.array.n && !bad_item; k++)
            if (value->u.array.items[k]->kind != J_STR) bad_item = value->u.array.items[k];
        if (value->u.array.n > 0 && !bad_item) return;
    }
    vg_buf m = {0};
    cfg_show(&m, value);
    buf_puts(&m, " is not valid under any of the anyOf schemas (#0: ");
    cfg_show(&m, value);
    buf_puts(&m, " is not of type 'string'; #1: ");
    if (value->kind != J_ARR) {
        cfg_show(&m, value);
        buf_puts(&m, " is not of type 'array'");
    } else if (value->u.array.n == 0) {
        buf_puts(&m, "has 0 items, fewer than the minimum of 1");
    } else {
        cfg_show(&m, bad_item);
        buf_puts(&m, " is not of type 'string'");
    }
    buf_puts(&m, ")");
    buf_putc(&m, '\0');
    cfg_problem(p, key, m.p);
}

static void check_mode(vg_problems *p, const char *key, const vg_json *value) {
    static const char *const modes[] = {"all", "any", "none", NULL};
    cfg_enum(p, key, value, modes);
}

const vg_property VG_PROPERTIES[] = {
    {"value", check_value},
    {"mode", check_mode},
    {"case_sensitive", cfg_boolean},
    {NULL, NULL},
};

static void put_listed(vg_buf *b, vg_str *items, uint32_t n) {
    buf_putc(b, '[');
    for (uint32_t k = 0; k < n && k < MAX_LISTED; k++) {
        if (k) buf_puts(b, ", ");
        json_quote(b, vg_clip(items[k], VG_EVIDENCE_CHARS));
    }
    buf_putc(b, ']');
}

void vg_evaluate(const vg_input *in) {
    vg_str source;
    const vg_json *expected = vg_expected(in, &source);
    if (expected == NULL) return;
    uint32_t count = 1;
    vg_str *needles;
    if (expected->kind == J_STR) {
        needles = vg_alloc(sizeof *needles);
        needles[0] = expected->u.text;
    } else if (expected->kind == J_ARR) {
        count = expected->u.array.n;
        needles = vg_alloc((count ? count : 1) * sizeof *needles);
        for (uint32_t k = 0; k < count; k++) {
            if (expected->u.array.items[k]->kind != J_STR) {
                vg_bad_expected(source, "must be a string or a list of strings");
                return;
            }
            needles[k] = expected->u.array.items[k]->u.text;
        }
        if (count == 0) {
            vg_bad_expected(source, "the list of substrings is empty");
            return;
        }
    } else {
        vg_bad_expected(source, "must be a string or a list of strings");
        return;
    }
    vg_str output;
    if (!vg_output_text(in, &output)) return;
    vg_str mode = vg_config_str(in->config, "mode", "all");
    int case_sensitive = vg_config_bool(in->config, "case_sensitive", 1);
    vg_str hay = case_sensitive ? output : vg_casefold(output);
    vg_str *present = vg_alloc(count * sizeof *present), *missing = vg_alloc(count * sizeof *missing);
    uint32_t n_present = 0, n_missing = 0;
    for (uint32_t k = 0; k < count; k++) {
        vg_str needle = case_sensitive ? needles[k] : vg_casefold(needles[k]);
        if (vg_find(hay, needle) >= 0) present[n_present++] = needles[k];
        else missing[n_missing++] = needles[k];
    }

    vg_buf message = {0}, evidence = {0};
    vg_finding finding = {SEV_MEDIUM, "missing_content", {0}, {0}};
    if (vg_eq(mode, "all") && n_missing) {
        buf_puts(&message, "output is missing ");
        buf_putu(&message, n_missing);
        buf_puts(&message, " of ");
        buf_putu(&message, count);
        buf_puts(&message, " expected substrings");
    } else if (vg_eq(mode, "any") && !n_present) {
        buf_puts(&message, "output contains none of the ");
        buf_putu(&message, count);
        buf_puts(&message, " expected substrings");
    } else if (vg_eq(mode, "none") && n_present) {
        buf_puts(&message, "output contains ");
        buf_putu(&message, n_present);
        buf_puts(&message, n_present > 1 ? " forbidden substrings" : " forbidden substring");
        finding.severity = SEV_HIGH;
        finding.category = "forbidden_content";
    } else {
        vg_pass();
        return;
    }
    ev_string(&evidence, "mode", mode);
    if (finding.severity == SEV_HIGH) {
        ev_key(&evidence, "present");
        put_listed(&evidence, present, n_present);
    } else {
        ev_key(&evidence, "missing");
        put_listed(&evidence, missing, n_missing);
    }
    ev_string(&evidence, "output", vg_clip(output, VG_EVIDENCE_CHARS));
    finding.message = buf_done(&message);
    finding.evidence = ev_close(&evidence);
    vg_fail(&finding, 1, finding.message);
}

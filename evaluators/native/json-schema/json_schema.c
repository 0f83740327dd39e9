/* vigilo/json-schema 2.0.0: evaluators/bundled/json-schema (1.0.0) in C, with the same results except for
 * patterns: they run on the native regular-expression engine, which refuses a few constructs Python's `re`
 * accepts (such a pattern counts as an invalid one), hence the new major version.
 * The output, parsed as JSON, is valid against the JSON Schema. */
#include "schema.h"
#include "vigilo_native.h"

const char VG_NAME[] = "vigilo/json-schema";
const char VG_VERSION[] = "2.0.0";
const char VG_DESCRIPTION[] = "Passes when the output, parsed as JSON, is valid against the JSON Schema.";

#define MAX_LISTED 10
#define MAX_PROBLEMS 5

static void check_value(vg_problems *p, const char *key, const vg_json *value) {
    if (value->kind == J_OBJ || value->kind == J_BOOL) return;
    vg_buf m = {0};
    cfg_show(&m, value);
    buf_puts(&m, " is not of type 'object', 'boolean'");
    buf_putc(&m, '\0');
    cfg_problem(p, key, m.p);
}

const vg_property VG_PROPERTIES[] = {
    {"value", check_value},
    {NULL, NULL},
};

static int too_deep(void) {
    vg_buf m = {0};
    buf_puts(&m, "the JSON Schema or the output nests more than ");
    buf_putu(&m, SCHEMA_MAX_DEPTH);
    buf_puts(&m, " levels deep, more than this evaluator follows");
    return vg_error("invalid_input", buf_done(&m));
}

static int invalid_schema(vg_str source, const schema_messages *problems) {
    vg_buf m = {0};
    buf_str(&m, source);
    buf_puts(&m, ": invalid JSON Schema: ");
    for (uint32_t k = 0; k < problems->n && k < MAX_PROBLEMS; k++) {
        if (k) buf_puts(&m, "; ");
        buf_str(&m, problems->items[k]);
    }
    if (problems->n > MAX_PROBLEMS) {
        buf_puts(&m, " (and ");
        buf_putu(&m, problems->n - MAX_PROBLEMS);
        buf_puts(&m, " more)");
    }
    return vg_error("invalid_config", buf_done(&m));
}

static void fail_with(const schema_messages *errors, const vg_json *value) {
    uint32_t listed = errors->n < MAX_LISTED ? errors->n : MAX_LISTED;
    vg_finding *findings = vg_alloc((MAX_LISTED + 1) * sizeof *findings);
    for (uint32_t k = 0; k < listed; k++)
        findings[k] = (vg_finding){SEV_MEDIUM, "schema_violation", errors->items[k], {NULL, 0}};
    if (errors->n > MAX_LISTED) {
        vg_buf m = {0};
        buf_putu(&m, errors->n - MAX_LISTED);
        buf_puts(&m, " more schema errors not shown");
        findings[listed++] = (vg_finding){SEV_INFO, "schema_violation", buf_done(&m), {NULL, 0}};
    }
    vg_buf ev = {0}, explanation = {0};
    ev_key(&ev, "errors");
    buf_putu(&ev, errors->n);
    ev_key(&ev, "output");
    vg_evidence_value(&ev, value);
    findings[0].evidence = ev_close(&ev);
    buf_puts(&explanation, "output violates the JSON Schema (");
    buf_putu(&explanation, errors->n);
    buf_puts(&explanation, errors->n > 1 ? " errors)" : " error)");
    vg_fail(findings, listed, buf_done(&explanation));
}

void vg_evaluate(const vg_input *in) {
    schema_begin();
    vg_str source;
    const vg_json *schema = vg_expected(in, &source);
    if (schema == NULL) return;
    if (schema->kind != J_OBJ && schema->kind != J_BOOL) {
        vg_bad_expected(source, "a JSON Schema must be an object or a boolean");
        return;
    }
    schema_messages problems;
    if (schema_check(schema, &problems) < 0) {
        too_deep();
        return;
    }
    if (problems.n) {
        invalid_schema(source, &problems);
        return;
    }
    const vg_json *value;
    if (!vg_output_json(in, &value)) return;
    schema_messages errors;
    if (schema_errors(value, schema, &errors) < 0) too_deep();
    else if (errors.n == 0) vg_pass();
    else fail_with(&errors, value);
}

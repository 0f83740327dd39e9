/* The conventions of the bundled evaluators, as evaluators/bundled/_common/vigilo_common.py defines them,
 * and the config check the Python SDK runs before every evaluation. Messages are the Python ones. */
#include <string.h>

#include "vigilo_native.h"

/* --- evidence ------------------------------------------------------------------------------------------ */

void ev_key(vg_buf *b, const char *key) {
    buf_puts(b, b->n ? ", " : "{");
    json_quote(b, vg_cstr(key));
    buf_puts(b, ": ");
}

void ev_string(vg_buf *b, const char *key, vg_str value) {
    ev_key(b, key);
    json_quote(b, value);
}

vg_str ev_close(vg_buf *b) {
    buf_puts(b, b->n ? "}" : "{}");
    return buf_done(b);
}

void vg_evidence_value(vg_buf *b, const vg_json *value) {
    if (value->kind == J_STR) {
        json_quote(b, vg_clip(value->u.text, VG_EVIDENCE_CHARS));
        return;
    }
    vg_str text = json_canonical_str(value);
    if (utf8_len(text) <= VG_EVIDENCE_CHARS) json_ascii(b, value);
    else json_quote(b, vg_clip(text, VG_EVIDENCE_CHARS));
}

/* --- paths, expectation, output ------------------------------------------------------------------------ */

static int parse_index(vg_str part, int64_t *out) {
    uint32_t i = 0;
    int negative = part.n > 0 && part.p[0] == '-';
    i = (uint32_t)negative;
    if (i >= part.n) return 0;
    int64_t v = 0;
    for (; i < part.n; i++) {
        if (part.p[i] < '0' || part.p[i] > '9') return 0;
        if (v > (int64_t)1 << 40) v = (int64_t)1 << 40; /* beyond any list: stays out of range */
        else v = v * 10 + (part.p[i] - '0');
    }
    *out = negative ? -v : v;
    return 1;
}

/* get_path(): the value at a dotted path ("" = the value itself), or NULL when missing. */
static const vg_json *get_path(const vg_json *value, vg_str path) {
    if (path.n == 0) return value;
    uint32_t start = 0;
    for (;;) {
        uint32_t end = start;
        while (end < path.n && path.p[end] != '.') end++;
        vg_str part = {path.p + start, end - start};
        const vg_json *next = NULL;
        int64_t index;
        if (value->kind == J_OBJ) {
            for (uint32_t k = 0; k < value->u.object.n; k++) {
                vg_str key = value->u.object.items[k].key;
                if (key.n == part.n && memcmp(key.p, part.p, part.n) == 0) next = value->u.object.items[k].value;
            }
        } else if (value->kind == J_ARR && parse_index(part, &index)) {
            int64_t n = value->u.array.n;
            if (-n <= index && index < n) next = value->u.array.items[index < 0 ? index + n : index];
        }
        if (next == NULL) return NULL;
        value = next;
        if (end == path.n) return value;
        start = end + 1;
    }
}

vg_str vg_config_str(const vg_json *config, const char *key, const char *fallback) {
    const vg_json *v = json_get(config, key);
    return v && v->kind == J_STR ? v->u.text : vg_cstr(fallback);
}

int vg_config_bool(const vg_json *config, const char *key, int fallback) {
    const vg_json *v = json_get(config, key);
    return v && v->kind == J_BOOL ? v->u.boolean : fallback;
}

const vg_json *vg_expected(const vg_input *in, vg_str *source) {
    const vg_json *given = json_get(in->config, "value");
    if (given && given->kind != J_NULL) {
        *source = vg_cstr("config 'value'");
        return given;
    }
    vg_str path = vg_config_str(in->config, "expected_path", "");
    vg_buf where = {0};
    if (path.n) {
        buf_puts(&where, "expected_path ");
        py_repr(&where, path);
    } else {
        buf_puts(&where, "the case's expected value");
    }
    *source = buf_done(&where);
    const vg_json *value = in->expected ? get_path(in->expected, path) : NULL;
    if (value != NULL && value->kind != J_NULL) return value;
    vg_buf m = {0};
    buf_puts(&m, "no expectation: config has no 'value' and ");
    if (in->expected == NULL) {
        buf_puts(&m, "the case has no expected value");
    } else if (path.n) {
        buf_puts(&m, "the case's expected value has nothing at ");
        py_repr(&m, path);
    } else {
        buf_puts(&m, "expected is null");
    }
    buf_puts(&m, " (case ");
    py_repr(&m, in->case_id);
    buf_puts(&m, ")");
    vg_error("missing_expected", buf_done(&m));
    return NULL;
}

int vg_bad_expected(vg_str source, const char *message) {
    vg_buf m = {0};
    buf_str(&m, source);
    buf_puts(&m, ": ");
    buf_puts(&m, message);
    int from_config = source.n >= 6 && memcmp(source.p, "config", 6) == 0;
    return vg_error(from_config ? "invalid_config" : "invalid_expected", buf_done(&m));
}

static int missing_output(vg_str message, vg_str evidence) {
    vg_finding problem = {SEV_HIGH, "missing_output", message, evidence};
    vg_fail(&problem, 1, message);
    return 0;
}

/* resolve_actual's choice of what is checked: 1 with the output text in *text (field "text"), 2 with the
 * structured value in *value, 0 after failing the evaluation with a missing_output finding. */
static int output_source(const vg_input *in, vg_str *text, const vg_json **value) {
    vg_str field = vg_config_str(in->config, "field", "text");
    vg_buf ev = {0};
    ev_string(&ev, "field", field);
    if (vg_eq(field, "text")) {
        if (!in->has_text) {
            return missing_output(vg_cstr("the agent produced no output text"), ev_close(&ev));
        }
        *text = in->text;
        return 1;
    }
    if (in->structured == NULL) {
        return missing_output(vg_cstr("the agent produced no structured output"), ev_close(&ev));
    }
    vg_str path = {"", 0};
    if (field.n > 11 && memcmp(field.p, "structured.", 11) == 0) {
        path.p = field.p + 11;
        path.n = field.n - 11;
    }
    *value = get_path(in->structured, path);
    if (*value == NULL) {
        vg_buf m = {0};
        buf_puts(&m, "the structured output has no value at ");
        py_repr(&m, path);
        ev_key(&ev, "structured");
        vg_evidence_value(&ev, in->structured);
        return missing_output(buf_done(&m), ev_close(&ev));
    }
    return 2;
}

int vg_output_text(const vg_input *in, vg_str *out) {
    const vg_json *value = NULL;
    int found = output_source(in, out, &value);
    if (found == 2) *out = value->kind == J_STR ? value->u.text : json_canonical_str(value);
    return found != 0;
}

int vg_output_json(const vg_input *in, const vg_json **out) {
    vg_str text;
    int found = output_source(in, &text, out);
    if (found != 1) return found != 0;
    const char *error = NULL;
    *out = json_parse(text, &error);
    if (*out != NULL) return 1;
    vg_buf m = {0}, ev = {0};
    buf_puts(&m, "output is not valid JSON: ");
    buf_puts(&m, error);
    ev_string(&ev, "field", vg_cstr("text"));
    ev_string(&ev, "text", vg_clip(text, VG_EVIDENCE_CHARS));
    vg_finding problem = {SEV_HIGH, "invalid_json", buf_done(&m), ev_close(&ev)};
    vg_fail(&problem, 1, problem.message);
    return 0;
}

/* --- config -------------------------------------------------------------------------------------------- */

int json_is(const vg_json *value, const char *text) { return value && value->kind == J_STR && vg_eq(value->u.text, text); }

static int identifier(const char *key) {
    if (!((*key >= 'A' && *key <= 'Z') || (*key >= 'a' && *key <= 'z') || *key == '_')) return 0;
    for (const char *c = key + 1; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return 0;
    return 1;
}

void cfg_key_path(vg_buf *b, const char *key) {
    buf_puts(b, "$");
    if (identifier(key)) {
        buf_putc(b, '.');
        buf_puts(b, key);
    } else {
        buf_putc(b, '[');
        json_canonical(b, &(vg_json){.kind = J_STR, .u.text = vg_cstr(key)});
        buf_putc(b, ']');
    }
}

void cfg_problem_at(vg_problems *p, vg_str path, const char *text) {
    if (p->count++) buf_puts(&p->text, "; ");
    buf_str(&p->text, path);
    buf_puts(&p->text, ": ");
    buf_puts(&p->text, text);
}

void cfg_problem(vg_problems *p, const char *key, const char *text) {
    vg_buf path = {0};
    if (key) cfg_key_path(&path, key);
    else buf_puts(&path, "$");
    cfg_problem_at(p, buf_done(&path), text);
}

void cfg_show(vg_buf *b, const vg_json *value) {
    vg_str text = json_canonical_str(value);
    if (utf8_len(text) > 80) {
        buf_str(b, utf8_head(text, 77));
        buf_puts(b, "...");
    } else {
        buf_str(b, text);
    }
}

static const char *kind_name(vg_kind kind) {
    switch (kind) {
    case J_STR: return "string";
    case J_BOOL: return "boolean";
    case J_ARR: return "array";
    case J_OBJ: return "object";
    default: return "number";
    }
}

int cfg_type(vg_problems *p, const char *key, const vg_json *value, vg_kind kind) {
    if (value->kind == kind) return 1;
    vg_buf m = {0};
    cfg_show(&m, value);
    buf_puts(&m, " is not of type '");
    buf_puts(&m, kind_name(kind));
    buf_puts(&m, "'");
    buf_putc(&m, '\0');
    cfg_problem(p, key, m.p);
    return 0;
}

void cfg_string(vg_problems *p, const char *key, const vg_json *value) { cfg_type(p, key, value, J_STR); }

void cfg_boolean(vg_problems *p, const char *key, const vg_json *value) { cfg_type(p, key, value, J_BOOL); }

void cfg_enum(vg_problems *p, const char *key, const vg_json *value, const char *const *options) {
    for (const char *const *o = options; *o; o++)
        if (json_is(value, *o)) return;
    vg_buf m = {0};
    cfg_show(&m, value);
    buf_puts(&m, " is not one of [");
    for (const char *const *o = options; *o; o++) {
        if (o != options) buf_puts(&m, ", ");
        buf_putc(&m, '"');
        buf_puts(&m, *o);
        buf_putc(&m, '"');
    }
    buf_puts(&m, "]");
    buf_putc(&m, '\0');
    cfg_problem(p, key, m.p);
}

/* `field`: 'text', 'structured' or 'structured.<dotted.path>' (Python's `$` also allows one final "\n"). */
static void cfg_field(vg_problems *p, const char *key, const vg_json *value) {
    if (!cfg_type(p, key, value, J_STR)) return;
    vg_str s = value->u.text;
    if (s.n && s.p[s.n - 1] == '\n') s.n--;
    int ok = vg_eq(s, "text") || vg_eq(s, "structured");
    if (!ok && s.n > 11 && memcmp(s.p, "structured.", 11) == 0) {
        ok = 1;
        uint32_t run = 0;
        for (uint32_t i = 11; i < s.n; i++) {
            if (s.p[i] == '.' || s.p[i] == '\n') {
                if (run == 0 || s.p[i] == '\n') ok = 0;
                run = 0;
            } else {
                run++;
            }
        }
        if (run == 0) ok = 0;
    }
    if (ok) return;
    vg_buf m = {0};
    cfg_show(&m, value);
    buf_puts(&m, " does not match '^(text|structured|structured\\\\.[^.]+(\\\\.[^.]+)*)$'");
    buf_putc(&m, '\0');
    cfg_problem(p, key, m.p);
}

int vg_config_check(const vg_json *config) {
    vg_problems p = {{0}, 0};
    if (config->kind != J_OBJ) {
        cfg_type(&p, NULL, config, J_OBJ);
    } else {
        for (uint32_t k = 0; k < config->u.object.n; k++) {
            vg_str key = config->u.object.items[k].key;
            const vg_json *value = config->u.object.items[k].value;
            char *name = vg_alloc(key.n + 1);
            memcpy(name, key.p, key.n);
            name[key.n] = '\0';
            vg_checker check = NULL;
            if (vg_eq(key, "field")) check = cfg_field;
            else if (vg_eq(key, "expected_path")) check = cfg_string;
            for (const vg_property *prop = VG_PROPERTIES; !check && prop->key; prop++)
                if (vg_eq(key, prop->key)) check = prop->check;
            if (check) {
                check(&p, name, value);
            } else {
                vg_buf m = {0};
                buf_puts(&m, "additional property ");
                py_repr(&m, key);
                buf_puts(&m, " is not allowed");
                buf_putc(&m, '\0');
                cfg_problem(&p, NULL, m.p);
            }
        }
    }
    if (p.count == 0) return 0;
    return vg_error("invalid_config", buf_done(&p.text));
}

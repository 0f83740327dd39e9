/* The JSON Schema validator of the Python SDK (evaluators/guest/vigilo_sdk/schema.py) in C: the same
 * keywords, the same messages in the same order. Patterns run on the runtime's regular-expression engine
 * (re_engine.h), with re.search semantics; a pattern the engine refuses counts as an invalid one. */
#ifndef SCHEMA_H
#define SCHEMA_H

#include "vigilo_native.h"

/* How deep validation (one level per subschema applied: properties, items, allOf, $ref...) and the schema
 * check may recurse; deeper is refused (the evaluator reports invalid_input). Each level costs up to ~180
 * bytes of the 64 KiB wasm stack, and the deepest calls (strtod, printf) ~9 KiB more. The Python guest
 * goes further before its RecursionError traps (in the sandbox: 400 nested anyOf, a recursive $ref list
 * 330 items deep, about 900 nested schemas in schema_check), so between 200 and those depths the two
 * differ. Values themselves (compared, shown, written) may nest as deep as the JSON reader allows. */
#define SCHEMA_MAX_DEPTH 200

typedef struct schema_messages {
    vg_str *items;
    uint32_t n, cap;
} schema_messages;

/* Forget the patterns compiled for an earlier evaluation (the arena they lived in has been emptied). */
void schema_begin(void);
/* schema_check(): the problems of the schema itself. 0, or -1 when it nests deeper than SCHEMA_MAX_DEPTH. */
int schema_check(const vg_json *schema, schema_messages *out);
/* schema_errors(): what makes `instance` invalid against `schema`; 0, or -1 when too deep. */
int schema_errors(const vg_json *instance, const vg_json *schema, schema_messages *out);

#endif

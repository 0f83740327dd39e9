/* A backtracking regular-expression engine with the semantics of CPython's `re` (str patterns, Unicode mode)
 * on the syntax listed at the top of re_engine.c. Freestanding: all memory comes from vg_alloc(). */
#ifndef RE_ENGINE_H
#define RE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* Allocation: the engine gets all memory from this function, which the embedder defines (an arena that is
   reset after each evaluation; never freed individually). Returns NULL when out of memory. */
void *vg_alloc(size_t size);

enum { RE_IGNORECASE = 1, RE_MULTILINE = 2, RE_DOTALL = 4 };
typedef struct re_prog re_prog;

/* Compile a pattern (UTF-8, `len` bytes, may contain NUL) with flags. On failure returns NULL and sets *error
   to Python's re.error text (e.g. "nothing to repeat at position 0") for a pattern Python rejects, or to a
   message starting with "unsupported: " for valid Python syntax this engine refuses. */
re_prog *re_compile(const char *pattern, size_t len, int flags, const char **error);

/* Run the program on text (valid UTF-8). fullmatch=0: Pattern.search; fullmatch=1: Pattern.fullmatch.
   Returns 1 on a match, 0 on none, -1 when out of memory; on a match sets the span of group 0 in code points
   and in bytes. */
int re_exec(const re_prog *prog, const char *text, size_t len, int fullmatch, size_t *start_cp, size_t *end_cp,
            size_t *start_byte, size_t *end_byte);

#endif

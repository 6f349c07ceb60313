/* Structured logging for the daemon: one JSON object per line on stderr (or a chosen fd),
 * safe to call from any thread, and free when the level is off. */
#ifndef INSPECTD_DAEMON_LOG_H
#define INSPECTD_DAEMON_LOG_H

#include <jansson.h>

typedef enum insp_log_level {
    INSP_LOG_LEVEL_DEBUG = 0,
    INSP_LOG_LEVEL_INFO = 1,
    INSP_LOG_LEVEL_WARN = 2,
    INSP_LOG_LEVEL_ERROR = 3,
} insp_log_level;

/* Messages below `level` are dropped. The default is INSP_LOG_LEVEL_INFO. Out-of-range
 * values are clamped. Safe to call while other threads log. */
void insp_log_set_level(int level);
int insp_log_get_level(void);

/* Whether a message at `level` would be written. The macros below call this before they
 * evaluate their arguments, so a disabled debug line costs one atomic load. */
int insp_log_enabled(int level);

/* "debug", "info", "warn", "error" (also "warning") -> level; INSP_ERR_INVALID otherwise. */
int insp_log_level_parse(const char *name, int *level);
/* The level's name ("info"); "?" for an out-of-range value. Never NULL. */
const char *insp_log_level_name(int level);

/* Where lines go: stderr (fd 2) by default; tests point it at a pipe or a file. The fd is
 * not owned: the caller keeps it open while logging may happen. */
void insp_log_set_fd(int fd);

/* Writes {"ts":"...Z","level":"...","event":"...","msg":"..."} and a newline in one
 * write(2). `event` is a short machine-readable name ("config", "request", "model_loaded");
 * NULL becomes "log". The message is printf-formatted; invalid UTF-8 is replaced with U+FFFD
 * so that the line stays valid JSON. Does not check the level: use the macros. */
void insp_log_write(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like insp_log_write, and appends every member of the JSON object `fields` after "msg"
 * (in insertion order). Steals the reference to `fields` (NULL and non-objects are
 * allowed: no extra members). Members named ts, level, event or msg are written as
 * "_ts", "_level", ... so that no key appears twice. `fmt` must not be NULL ("" is fine). */
void insp_log_fields(int level, const char *event, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* INSP_LOG_INFO("model_loaded", "model %s from %s", name, path): the arguments are evaluated
 * only when the level is enabled. */
#define INSP_LOG_AT(level, event, ...)                                                         \
    do {                                                                                       \
        if (insp_log_enabled(level))                                                           \
            insp_log_write((level), (event), __VA_ARGS__);                                     \
    } while (0)
#define INSP_LOG_DEBUG(event, ...) INSP_LOG_AT(INSP_LOG_LEVEL_DEBUG, event, __VA_ARGS__)
#define INSP_LOG_INFO(event, ...) INSP_LOG_AT(INSP_LOG_LEVEL_INFO, event, __VA_ARGS__)
#define INSP_LOG_WARN(event, ...) INSP_LOG_AT(INSP_LOG_LEVEL_WARN, event, __VA_ARGS__)
#define INSP_LOG_ERROR(event, ...) INSP_LOG_AT(INSP_LOG_LEVEL_ERROR, event, __VA_ARGS__)

/* INSP_LOG_FIELDS(INSP_LOG_LEVEL_INFO, "request", json_pack("{s:s,s:i}", "route", r,
 * "status", 200), "%s %s", method, path): `fields` (an expression yielding a new reference)
 * and the message arguments are evaluated only when the level is enabled. */
#define INSP_LOG_FIELDS(level, event, fields, ...)                                             \
    do {                                                                                       \
        if (insp_log_enabled(level))                                                           \
            insp_log_fields((level), (event), (fields), __VA_ARGS__);                          \
    } while (0)

#endif

/*
 * dj_compiler.h - attribute macros used across danejoin.
 *
 * DJ_MUSTCHECK marks every call that can fail (STYLE.md rule 4), DJ_PUBLIC marks the symbols a
 * library exports (everything else is hidden by -fvisibility=hidden).
 */
#ifndef DJ_COMMON_DJ_COMPILER_H
#define DJ_COMMON_DJ_COMPILER_H

#define DJ_MUSTCHECK __attribute__((warn_unused_result))
#define DJ_PUBLIC __attribute__((visibility("default")))
#define DJ_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define DJ_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* DJ_COMMON_DJ_COMPILER_H */

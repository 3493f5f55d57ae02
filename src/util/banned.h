/*
 * banned.h - functions that must not be used in bv, turned into compile errors.
 *
 * Include it last in every .c file of the project.  Each banned function has a safer
 * replacement: bv_buf_* or bv_xasprintf() for string building, bv_parse_*() for numbers,
 * bv_time_*() for calendar time, mkstemp()/O_TMPFILE for temporary files.
 */
#ifndef BV_UTIL_BANNED_H
#define BV_UTIL_BANNED_H

#define BV_BANNED(func) sorry_##func##_is_banned_in_bv

#undef strcpy
#define strcpy(x, y) BV_BANNED(strcpy)
#undef strcat
#define strcat(x, y) BV_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BV_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BV_BANNED(strncat)
#undef sprintf
#define sprintf(...) BV_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BV_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BV_BANNED(strtok)
#undef gets
#define gets(x) BV_BANNED(gets)
#undef atoi
#define atoi(x) BV_BANNED(atoi)
#undef atol
#define atol(x) BV_BANNED(atol)
#undef atoll
#define atoll(x) BV_BANNED(atoll)
#undef mktemp
#define mktemp(x) BV_BANNED(mktemp)
#undef tmpnam
#define tmpnam(x) BV_BANNED(tmpnam)
#undef gmtime
#define gmtime(x) BV_BANNED(gmtime)
#undef localtime
#define localtime(x) BV_BANNED(localtime)
#undef ctime
#define ctime(x) BV_BANNED(ctime)
#undef asctime
#define asctime(x) BV_BANNED(asctime)

#endif

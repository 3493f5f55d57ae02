/*
 * exit.h - the exit statuses of bv, in one place.
 *
 * Only src/cli/ chooses an exit status: a command's run() returns one of these and main.c
 * returns it from main().  Library code returns negative enum bv_error_code values instead.
 *
 *   0    BV_EXIT_OK              success
 *   1    BV_EXIT_FAILURE         the command failed (the error line says why)
 *   2    BV_EXIT_USAGE           the command line is wrong (unknown command or option,
 *                                wrong number of operands)
 *
 * Commands that run another program (bv run and its shims, bv exec, bv shell) pass that
 * program's status through, so a script cannot tell bv's own failures from the tool's by
 * 1 or 2.  Like `docker run` (and a POSIX shell for 126 and 127) they use:
 *
 *   125  BV_EXIT_NOT_STARTED     bv itself failed before the tool started (no bv.lock, the
 *                                backend or its image missing, ...)
 *   126  BV_EXIT_NOT_EXECUTABLE  the command was found but could not be executed
 *   127  BV_EXIT_NOT_FOUND       the command (or tool) was not found
 *   128+N  BV_EXIT_SIGNAL + N    the tool was killed by signal N; the backends compute this
 *                                status themselves, as the shell does
 *
 * Any other value is the tool's own exit status.
 */
#ifndef BV_CLI_EXIT_H
#define BV_CLI_EXIT_H

enum {
	BV_EXIT_OK = 0,
	BV_EXIT_FAILURE = 1,
	BV_EXIT_USAGE = 2,
	BV_EXIT_NOT_STARTED = 125,
	BV_EXIT_NOT_EXECUTABLE = 126,
	BV_EXIT_NOT_FOUND = 127,
	BV_EXIT_SIGNAL = 128,
};

#endif

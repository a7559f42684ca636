/* lineedit.h — the REPL's terminal input (lineedit.c): line editing and
 * history through libedit when stdin is a terminal, plain getline()
 * otherwise (scripts pipe into the REPL).
 *
 * History: one entry per line in $XDG_STATE_HOME/provium/repl_history
 * (default ~/.local/state/provium/repl_history), read at le_open(),
 * appended to as lines are entered, trimmed to the last LE_HISTORY_MAX
 * entries at le_open(). A file that cannot be read or written only
 * costs the history (le_open() says why in its err). */
#ifndef PROVIUM_LINEEDIT_H
#define PROVIUM_LINEEDIT_H

#include <stdbool.h>
#include <stddef.h>

#define LE_HISTORY_MAX 1000

/* Decide the mode (editing when stdin is a TTY) and load the history.
 * Returns 0; -1 when editing is on but the history is unusable (err
 * says why; editing still works). */
int le_open(char *err, size_t errlen);

/* Is line editing on (stdin is a terminal)? */
bool le_editing(void);

/* The history file's path into buf; -1 when there is no usable home. */
int le_history_path(char *buf, size_t len);

/* One line without its newline (free() it), shown after prompt when
 * editing; NULL at EOF, or with *interrupted set when a signal arrived
 * while waiting (the typed text is dropped). */
char *le_read(const char *prompt, bool *interrupted);

/* Record a line in the history (memory and file); blank lines and a
 * repeat of the previous entry are skipped. No-op when not editing. */
void le_add(const char *line);

/* Release what le_open() took. */
void le_close(void);

#endif

#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#include <locale.h>
#include <ncursesw/ncurses.h>

// ncurses exposes attributes, colour pairs and mouse masks as macros that Swift cannot import;
// these inline functions give them to Swift unchanged.
static inline attr_t troupe_a_bold(void) { return A_BOLD; }
static inline attr_t troupe_a_reverse(void) { return A_REVERSE; }
static inline attr_t troupe_a_dim(void) { return A_DIM; }
static inline attr_t troupe_a_underline(void) { return A_UNDERLINE; }
/// Sets the attributes and an extended colour pair (pairs past 32767 go through `opts`).
static inline int troupe_set_style(attr_t attrs, int pair) { return attr_set(attrs, 0, &pair); }
static inline mmask_t troupe_mouse_mask(void) {
    return BUTTON1_PRESSED | BUTTON1_RELEASED | BUTTON1_CLICKED | BUTTON4_PRESSED | BUTTON5_PRESSED;
}
static inline mmask_t troupe_button1(void) { return BUTTON1_PRESSED | BUTTON1_CLICKED | BUTTON1_RELEASED; }
static inline mmask_t troupe_wheel_up(void) { return BUTTON4_PRESSED; }
static inline mmask_t troupe_wheel_down(void) { return BUTTON5_PRESSED; }
static inline mmask_t troupe_button1_released(void) { return BUTTON1_RELEASED; }
#include <wchar.h>
/// Cells a character takes on screen (-1: not printable); glibc hides wcwidth behind _XOPEN_SOURCE.
static inline int troupe_wcwidth(unsigned int c) { return wcwidth((wchar_t)c); }

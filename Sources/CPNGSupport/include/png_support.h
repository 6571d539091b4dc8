#ifndef TROUPE_PNG_SUPPORT_H
#define TROUPE_PNG_SUPPORT_H
#include <stddef.h>

/* libpng's full API reports errors by longjmp, which must not cross Swift frames; these
   wrappers own the setjmp and return 0 on success, or -1 with a message in `err`. */

/* Writes 8-bit RGB (channels 3) or RGBA (4) with tEXt chunks keys[i] = values[i]. */
int troupe_png_write(const char *path, const unsigned char *pixels, int width, int height, int channels,
                     const char *const *keys, const char *const *values, int text_count,
                     char *err, size_t err_len);

/* Reads the text chunks (tEXt, zTXt, iTXt) of a PNG. On success *count entries are returned in
   newly allocated arrays of newly allocated strings; free them with troupe_png_free_text. */
int troupe_png_read_text(const char *path, char ***keys, char ***values, int *count,
                         char *err, size_t err_len);

void troupe_png_free_text(char **keys, char **values, int count);

#endif

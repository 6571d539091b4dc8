#include <png.h>
/* Composite format macros that Swift cannot import as written. */
static const unsigned int TROUPE_PNG_FORMAT_RGB = PNG_FORMAT_RGB;
static const unsigned int TROUPE_PNG_FORMAT_RGBA = PNG_FORMAT_RGBA;

// Text-chunk PNG I/O through libpng's full API, with the setjmp error handling libpng needs
// (Swift cannot setjmp). Pixels themselves are decoded by the simplified API in Swift.

#include "png_support.h"
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { jmp_buf jump; char *err; size_t err_len; } troupe_png_ctx;

static void on_error(png_structp png, png_const_charp msg) {
    troupe_png_ctx *ctx = (troupe_png_ctx *)png_get_error_ptr(png);
    snprintf(ctx->err, ctx->err_len, "%s", msg);
    longjmp(ctx->jump, 1);
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int troupe_png_write(const char *path, const unsigned char *pixels, int width, int height, int channels,
                     const char *const *keys, const char *const *values, int text_count,
                     char *err, size_t err_len) {
    troupe_png_ctx ctx = { .err = err, .err_len = err_len };
    FILE *f = fopen(path, "wb");
    if (!f) { snprintf(err, err_len, "cannot open for writing"); return -1; }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_textp text = NULL;
    if (!png || !info) { snprintf(err, err_len, "out of memory"); fclose(f); if (png) png_destroy_write_struct(&png, NULL); return -1; }
    if (setjmp(ctx.jump)) {
        png_destroy_write_struct(&png, &info);
        free(text);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (text_count > 0) {
        text = calloc((size_t)text_count, sizeof(png_text));
        for (int i = 0; i < text_count; i++) {
            /* ASCII values go in tEXt (what A1111 writes); others in UTF-8 iTXt. */
            int ascii = 1;
            for (const unsigned char *c = (const unsigned char *)values[i]; *c; c++) if (*c > 126) { ascii = 0; break; }
            text[i].compression = ascii ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
            text[i].key = (png_charp)keys[i];
            text[i].text = (png_charp)values[i];
            text[i].text_length = strlen(values[i]);
            text[i].lang = NULL;
            text[i].lang_key = NULL;
        }
        png_set_text(png, info, text, text_count);
    }
    png_write_info(png, info);
    size_t stride = (size_t)width * (size_t)channels;
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * stride));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(text);
    if (fclose(f) != 0) { snprintf(err, err_len, "close failed"); return -1; }
    return 0;
}

int troupe_png_read_text(const char *path, char ***keys_out, char ***values_out, int *count,
                         char *err, size_t err_len) {
    const png_uint_32 max_side = 16384;
    const unsigned long long max_pixels = 64ull << 20;
    troupe_png_ctx ctx = { .err = err, .err_len = err_len };
    *keys_out = NULL; *values_out = NULL; *count = 0;
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, err_len, "cannot open"); return -1; }
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) { snprintf(err, err_len, "not a PNG file"); fclose(f); return -1; }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_infop end = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || !end) { snprintf(err, err_len, "out of memory"); fclose(f); if (png) png_destroy_read_struct(&png, info ? &info : NULL, NULL); return -1; }
    char **keys = NULL, **values = NULL;
    int n = 0;
    if (setjmp(ctx.jump)) {
        troupe_png_free_text(keys, values, n);
        png_destroy_read_struct(&png, &info, &end);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    /* Hostile files: bounded image size (checked before any pixel is decoded, since text after
       the image data means decoding every row first) and bounded chunk allocations. */
    png_set_user_limits(png, max_side, max_side);
    png_set_chunk_malloc_max(png, 8u << 20);
    /* Text can sit before or after the image data: read both info blocks, skip the pixels. */
    png_read_info(png, info);
    png_uint_32 h = png_get_image_height(png, info);
    if ((unsigned long long)png_get_image_width(png, info) * h > max_pixels) {
        snprintf(err, err_len, "image of %u×%u pixels is over the %llu-pixel limit", png_get_image_width(png, info), h, max_pixels);
        png_destroy_read_struct(&png, &info, &end);
        fclose(f);
        return -1;
    }
    png_size_t rowbytes = png_get_rowbytes(png, info);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    rowbytes = png_get_rowbytes(png, info);
    png_bytep row = malloc(rowbytes ? rowbytes : 1);
    for (int p = 0; p < passes; p++) for (png_uint_32 y = 0; y < h; y++) png_read_row(png, row, NULL);
    free(row);
    png_read_end(png, end);
    png_infop sources[2] = { info, end };
    for (int s = 0; s < 2; s++) {
        png_textp text; int num = 0;
        if (png_get_text(png, sources[s], &text, &num) > 0) {
            keys = realloc(keys, sizeof(char *) * (size_t)(n + num));
            values = realloc(values, sizeof(char *) * (size_t)(n + num));
            for (int i = 0; i < num; i++) {
                keys[n] = strdup(text[i].key);
                values[n] = strdup(text[i].text ? text[i].text : "");
                n++;
            }
        }
    }
    png_destroy_read_struct(&png, &info, &end);
    fclose(f);
    *keys_out = keys; *values_out = values; *count = n;
    return 0;
}

void troupe_png_free_text(char **keys, char **values, int count) {
    for (int i = 0; i < count; i++) { free(keys[i]); free(values[i]); }
    free(keys); free(values);
}

/*
 * Row-by-row JPEG decoding for `iipsrv convert` (src/codec/jpeg_bands.rs), over the libjpeg
 * API of the libjpeg-turbo that turbojpeg-sys builds. TurboJPEG's own API decodes whole
 * images or cropping regions (each band skipping every row above it again: measured 52% of
 * a 20000 x 15000 conversion in Huffman decoding); libjpeg's scanline API continues where
 * it stopped. libjpeg reports errors by calling error_exit, which must not return: here it
 * longjmps back into this file, so no error unwinds through Rust.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jpeglib.h"

struct iip_error {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

typedef struct {
  struct jpeg_decompress_struct d;
  struct iip_error e;
  int started;
} iip_jpeg_rows;

static void on_error(j_common_ptr c) {
  struct iip_error *e = (struct iip_error *)c->err;
  (*c->err->format_message)(c, e->message);
  longjmp(e->jump, 1);
}

/* Warnings (level -1: corrupt data, a file cut short) are errors: a pyramid silently
   filled with grey below the damage is worse than no pyramid. Trace messages are dropped. */
static void on_message(j_common_ptr c, int level) {
  if (level < 0) on_error(c);
}

/* The message of the last error of `r`. */
const char *iip_jpeg_rows_error(const iip_jpeg_rows *r) { return r->e.message; }

/* Frees what iip_jpeg_rows_open returned (also after a failed open). */
void iip_jpeg_rows_close(iip_jpeg_rows *r) {
  if (r) {
    jpeg_destroy_decompress(&r->d);
    free(r);
  }
}

/* Frees an ICC profile returned by iip_jpeg_rows_open. */
void iip_jpeg_free(void *p) { free(p); }

/*
 * Reads the header of `len` bytes at `data` (which must outlive the decoder) and starts
 * decoding to 8-bit grey or RGB. Fills width, height, channels, whether the file is
 * progressive, and the ICC profile (malloc'ed, or NULL). Returns the decoder; on error its
 * message is in iip_jpeg_rows_error and `*ok` is 0 (close it all the same). NULL when out
 * of memory.
 */
iip_jpeg_rows *iip_jpeg_rows_open(const unsigned char *data, unsigned long len, int *ok,
                                  unsigned *width, unsigned *height, int *channels,
                                  int *progressive, unsigned char **icc, unsigned *icc_len) {
  iip_jpeg_rows *r = calloc(1, sizeof *r);
  *ok = 0;
  *icc = NULL;
  *icc_len = 0;
  if (!r) return NULL;
  r->d.err = jpeg_std_error(&r->e.pub);
  r->e.pub.error_exit = on_error;
  r->e.pub.emit_message = on_message;
  if (setjmp(r->e.jump)) return r;
  jpeg_create_decompress(&r->d);
  jpeg_mem_src(&r->d, data, len);
  jpeg_save_markers(&r->d, JPEG_APP0 + 2, 0xFFFF);
  jpeg_read_header(&r->d, TRUE);
  if (r->d.jpeg_color_space == JCS_CMYK || r->d.jpeg_color_space == JCS_YCCK) {
    strcpy(r->e.message, "CMYK JPEG is not supported");
    return r;
  }
  r->d.out_color_space = r->d.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  *progressive = r->d.progressive_mode ? 1 : 0;
  jpeg_read_icc_profile(&r->d, icc, icc_len);
  *width = r->d.image_width;
  *height = r->d.image_height;
  *channels = r->d.out_color_space == JCS_GRAYSCALE ? 1 : 3;
  *ok = 1;
  return r;
}

/*
 * Decodes the next `rows` rows into `out` (rows x width x channels bytes); the first call
 * starts the decompression. Returns the rows decoded (fewer at the end of the image), or
 * -1 on error.
 */
int iip_jpeg_rows_read(iip_jpeg_rows *r, unsigned char *out, int rows) {
  volatile int n = 0;
  if (setjmp(r->e.jump)) return -1;
  if (!r->started) {
    jpeg_start_decompress(&r->d);
    r->started = 1;
  }
  size_t stride = (size_t)r->d.output_width * (size_t)r->d.output_components;
  while (n < rows && r->d.output_scanline < r->d.output_height) {
    JSAMPROW row = out + (size_t)n * stride;
    n += (int)jpeg_read_scanlines(&r->d, &row, 1);
  }
  return n;
}

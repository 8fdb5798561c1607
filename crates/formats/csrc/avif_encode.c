/*
 * AVIF encoding through the system libavif (src/codec/avif.rs). One call takes interleaved
 * 8-bit or 16-bit samples (1 to 4 channels) and returns the encoded file; libavif's structs
 * are filled here, by the C compiler that knows their layout, never from Rust.
 *
 * Grey (and grey + alpha) is written straight into the Y (and alpha) plane of a YUV 4:0:0
 * image; colour goes through libavif's RGB to YUV conversion: 4:2:0 when lossy, 4:4:4 with
 * the identity matrix (Y = G, U = B, V = R) when lossless, so that lossless is exact.
 * libavif 0.11 has no `quality` field: the caller passes the quantizer (0-63) it derived.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <avif/avif.h>

/* The libavif codec of iipsrv's AVIF_CODEC numbering: 1 aom, 2 rav1e, 3 svt, else auto. */
static avifCodecChoice codec_choice(int codec) {
  switch (codec) {
    case 1: return AVIF_CODEC_CHOICE_AOM;
    case 2: return AVIF_CODEC_CHOICE_RAV1E;
    case 3: return AVIF_CODEC_CHOICE_SVT;
    default: return AVIF_CODEC_CHOICE_AUTO;
  }
}

/* Copies `what` and `detail` into the caller's error buffer. */
static void set_error(char *err, size_t err_len, const char *what, const char *detail) {
  if (err && err_len > 0) snprintf(err, err_len, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* Sample `i` of `pixels` (8 or 16-bit), rescaled to `depth` bits. */
static uint32_t sample(const void *pixels, size_t i, int sample_bytes, int depth) {
  uint32_t max = (1u << depth) - 1;
  if (sample_bytes == 1) {
    uint32_t v = ((const uint8_t *)pixels)[i];
    return depth == 8 ? v : (v * max + 127) / 255;
  }
  uint32_t v = ((const uint16_t *)pixels)[i];
  return (v * max + 32767) / 65535;
}

/* Writes channel `c` of every pixel into a plane of `image`'s depth. */
static void fill_plane(uint8_t *plane, uint32_t row_bytes, const avifImage *image,
                       const void *pixels, int channels, int c, int sample_bytes) {
  for (uint32_t y = 0; y < image->height; y++) {
    uint8_t *row = plane + (size_t)y * row_bytes;
    for (uint32_t x = 0; x < image->width; x++) {
      size_t i = ((size_t)y * image->width + x) * (size_t)channels + (size_t)c;
      uint32_t v = sample(pixels, i, sample_bytes, (int)image->depth);
      if (image->depth > 8)
        ((uint16_t *)row)[x] = (uint16_t)v;
      else
        row[x] = (uint8_t)v;
    }
  }
}

/* Grey, and grey + alpha: the samples become the Y and alpha planes as they are. */
static avifResult fill_grey(avifImage *image, const void *pixels, int channels, int sample_bytes) {
  avifResult r = avifImageAllocatePlanes(image, channels == 2 ? AVIF_PLANES_ALL : AVIF_PLANES_YUV);
  if (r != AVIF_RESULT_OK) return r;
  fill_plane(image->yuvPlanes[AVIF_CHAN_Y], image->yuvRowBytes[AVIF_CHAN_Y], image, pixels,
             channels, 0, sample_bytes);
  if (channels == 2)
    fill_plane(image->alphaPlane, image->alphaRowBytes, image, pixels, channels, 1, sample_bytes);
  return AVIF_RESULT_OK;
}

/* RGB and RGBA through libavif's conversion (which rescales 16-bit samples to the depth). */
static avifResult fill_colour(avifImage *image, const void *pixels, int channels, int sample_bytes) {
  avifRGBImage rgb;
  avifRGBImageSetDefaults(&rgb, image);
  rgb.depth = sample_bytes == 2 ? 16 : 8;
  rgb.format = channels == 4 ? AVIF_RGB_FORMAT_RGBA : AVIF_RGB_FORMAT_RGB;
  rgb.pixels = (uint8_t *)pixels; /* only read by avifImageRGBToYUV */
  rgb.rowBytes = image->width * (uint32_t)channels * (uint32_t)sample_bytes;
  return avifImageRGBToYUV(image, &rgb);
}

/* The image to encode, or NULL with `*result` set. */
static avifImage *make_image(const void *pixels, uint32_t width, uint32_t height, int channels,
                             int sample_bytes, int depth, int lossless, avifResult *result) {
  avifPixelFormat format = channels <= 2 ? AVIF_PIXEL_FORMAT_YUV400
                           : lossless    ? AVIF_PIXEL_FORMAT_YUV444
                                         : AVIF_PIXEL_FORMAT_YUV420;
  avifImage *image = avifImageCreate(width, height, (uint32_t)depth, format);
  if (!image) {
    *result = AVIF_RESULT_OUT_OF_MEMORY;
    return NULL;
  }
  image->yuvRange = AVIF_RANGE_FULL;
  if (lossless && channels > 2) image->matrixCoefficients = AVIF_MATRIX_COEFFICIENTS_IDENTITY;
  *result = channels <= 2 ? fill_grey(image, pixels, channels, sample_bytes)
                          : fill_colour(image, pixels, channels, sample_bytes);
  if (*result != AVIF_RESULT_OK) {
    avifImageDestroy(image);
    return NULL;
  }
  return image;
}

/*
 * Encodes `width` x `height` pixels of `channels` (1-4) interleaved samples of
 * `sample_bytes` (1 or 2, native-endian 16-bit) at `depth` bits (8, 10 or 12) with quantizer
 * `quantizer` (0-63; 0 with `lossless` for an exact file), codec `codec` (0 auto, 1 aom,
 * 2 rav1e, 3 svt), `speed` (0-10) and `threads`, embedding `icc` when `icc_len` > 0 and
 * the XMP packet `xmp` when `xmp_len` > 0. On
 * success returns 1 and the file in `*out` / `*out_len` (free it with iip_avif_free); on
 * failure returns 0 with a message in `err`.
 */
int iip_avif_encode(const void *pixels, uint32_t width, uint32_t height, int channels,
                    int sample_bytes, int depth, int quantizer, int lossless, int codec,
                    int speed, int threads, const uint8_t *icc, size_t icc_len,
                    const uint8_t *xmp, size_t xmp_len, uint8_t **out, size_t *out_len,
                    char *err, size_t err_len) {
  avifResult r;
  *out = NULL;
  *out_len = 0;
  if (channels < 1 || channels > 4 || (sample_bytes != 1 && sample_bytes != 2)) {
    set_error(err, err_len, "unsupported sample layout", NULL);
    return 0;
  }
  avifImage *image = make_image(pixels, width, height, channels, sample_bytes, depth, lossless, &r);
  if (!image) {
    set_error(err, err_len, "cannot convert the pixels", avifResultToString(r));
    return 0;
  }
  if (icc_len > 0) avifImageSetProfileICC(image, icc, icc_len);
  if (xmp_len > 0) avifImageSetMetadataXMP(image, xmp, xmp_len);
  avifEncoder *encoder = avifEncoderCreate();
  if (!encoder) {
    avifImageDestroy(image);
    set_error(err, err_len, "out of memory for the encoder", NULL);
    return 0;
  }
  encoder->codecChoice = codec_choice(codec);
  encoder->speed = speed;
  encoder->maxThreads = threads;
  /* Several threads need several AV1 tiles to share a large image out. */
  encoder->autoTiling = threads > 1 ? AVIF_TRUE : AVIF_FALSE;
  encoder->minQuantizer = quantizer;
  encoder->maxQuantizer = quantizer;
  encoder->minQuantizerAlpha = lossless ? 0 : quantizer;
  encoder->maxQuantizerAlpha = lossless ? 0 : quantizer;
  avifRWData data = AVIF_DATA_EMPTY;
  r = avifEncoderWrite(encoder, image, &data);
  if (r != AVIF_RESULT_OK) {
    const char *detail = encoder->diag.error[0] ? encoder->diag.error : avifResultToString(r);
    set_error(err, err_len, "libavif could not encode", detail);
    avifRWDataFree(&data); /* libavif may have started writing into it */
  }
  avifEncoderDestroy(encoder);
  avifImageDestroy(image);
  if (r != AVIF_RESULT_OK) return 0;
  *out = data.data;
  *out_len = data.size;
  return 1;
}

/* Frees a file returned by iip_avif_encode. */
void iip_avif_free(uint8_t *data, size_t len) {
  avifRWData d;
  d.data = data;
  d.size = len;
  avifRWDataFree(&d);
}

/* Whether this libavif can encode with `codec` (0 auto, 1 aom, 2 rav1e, 3 svt). */
int iip_avif_can_encode(int codec) {
  return avifCodecName(codec_choice(codec), AVIF_CODEC_FLAG_CAN_ENCODE) != NULL;
}

/* libavif's codecs and their versions, into `out` (256 bytes), e.g.
   "dav1d [dec]:1.0.0, aom [enc/dec]:v3.6.0, ...". */
void iip_avif_versions(char *out) { avifCodecVersions(out); }

// HTJ2K encoding through OpenJPH (Debian 12: libopenjph-dev 0.9), for `iipsrv convert`:
// a raw codestream written to a file, rows pushed top to bottom (OpenJPH's line exchange),
// so the caller never holds the whole image. OpenJPH reports errors by throwing: every
// entry point catches them and returns 0 with the message copied into `err`.
// The Rust side is src/codec/htj2k_encode.rs.

// OpenJPH 0.9's headers need ojph_arch.h (OJPH_EXPORT) first, hence this order.
#include <openjph/ojph_arch.h>
#include <openjph/ojph_file.h>
#include <openjph/ojph_mem.h>
#include <openjph/ojph_params.h>
#include <openjph/ojph_codestream.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <new>

struct iipsrv_ojph {
  ojph::codestream codestream;
  ojph::j2c_outfile file;
  ojph::line_buf *line = nullptr;
  ojph::ui32 next = 0;
  uint32_t width = 0, channels = 0, bits = 0;
};

// The layout of the codestream: what `iipsrv_ojph_open` is asked to write. It holds the
// rows `top .. top + height` of an image: image and tile offsets (0, top), so that its
// tiles are coded exactly as the same tiles of the whole image (a row of tiles of it).
struct iipsrv_ojph_layout {
  uint32_t width, height, top, channels, bits, tile, levels;
  // 0 for reversible 5/3 (lossless); otherwise the quantisation step of the 9/7 wavelet.
  float qstep;
};

static void message(char *err, size_t len, const char *text) {
  if (err != nullptr && len > 0) {
    std::strncpy(err, text, len - 1);
    err[len - 1] = '\0';
  }
}

// Runs `body`, returning 1, or 0 with the message of the exception it threw in `err`.
template <typename F> static int guarded(char *err, size_t err_len, F body) {
  try {
    return body();
  } catch (const std::exception &x) {
    message(err, err_len, x.what());
  } catch (...) {
    message(err, err_len, "OpenJPH failed");
  }
  return 0;
}

static void set_up(iipsrv_ojph *e, const iipsrv_ojph_layout *l) {
  ojph::param_siz siz = e->codestream.access_siz();
  siz.set_image_extent(ojph::point(l->width, l->top + l->height));
  siz.set_image_offset(ojph::point(0, l->top));
  siz.set_tile_offset(ojph::point(0, l->top));
  siz.set_tile_size(ojph::size(l->tile, l->tile));
  siz.set_num_components(l->channels);
  for (uint32_t c = 0; c < l->channels; c++) {
    siz.set_component(c, ojph::point(1, 1), l->bits, false);
  }
  ojph::param_cod cod = e->codestream.access_cod();
  cod.set_num_decomposition(l->levels);
  cod.set_progression_order("RPCL");
  cod.set_color_transform(l->channels == 3);
  cod.set_reversible(l->qstep <= 0.0f);
  if (l->qstep > 0.0f) {
    e->codestream.access_qcd().set_irrev_quant(l->qstep);
  }
  e->codestream.set_planar(false);
}

extern "C" iipsrv_ojph *iipsrv_ojph_open(const char *path,
                                         const iipsrv_ojph_layout *layout,
                                         char *err, size_t err_len) {
  iipsrv_ojph *e = new (std::nothrow) iipsrv_ojph;
  if (e == nullptr) {
    message(err, err_len, "out of memory");
    return nullptr;
  }
  int ok = guarded(err, err_len, [&]() {
    e->width = layout->width;
    e->channels = layout->channels;
    e->bits = layout->bits;
    set_up(e, layout);
    e->file.open(path);
    e->codestream.write_headers(&e->file);
    e->line = e->codestream.exchange(nullptr, e->next);
    return 1;
  });
  if (ok) return e;
  delete e;
  return nullptr;
}

// Pushes `rows` rows of interleaved samples (bytes when bits <= 8, native-endian 16-bit
// words otherwise), `width * channels` samples a row.
extern "C" int iipsrv_ojph_push(iipsrv_ojph *e, const void *samples, uint32_t rows,
                                char *err, size_t err_len) {
  return guarded(err, err_len, [&]() {
    const size_t row = (size_t)e->width * e->channels;
    for (uint32_t y = 0; y < rows; y++) {
      for (uint32_t c = 0; c < e->channels; c++) {
        if (e->line == nullptr || e->next != c) {
          message(err, err_len, "OpenJPH asked for rows out of order");
          return 0;
        }
        ojph::si32 *out = e->line->i32;
        if (e->bits <= 8) {
          const uint8_t *in = (const uint8_t *)samples + y * row + c;
          for (uint32_t x = 0; x < e->width; x++) out[x] = in[(size_t)x * e->channels];
        } else {
          const uint16_t *in = (const uint16_t *)samples + y * row + c;
          for (uint32_t x = 0; x < e->width; x++) out[x] = in[(size_t)x * e->channels];
        }
        e->line = e->codestream.exchange(e->line, e->next);
      }
    }
    return 1;
  });
}

// Writes the codestream's end once every row was pushed, and closes the file.
extern "C" int iipsrv_ojph_finish(iipsrv_ojph *e, char *err, size_t err_len) {
  return guarded(err, err_len, [&]() {
    e->codestream.flush();
    e->codestream.close();
    return 1;
  });
}

extern "C" void iipsrv_ojph_free(iipsrv_ojph *e) { delete e; }

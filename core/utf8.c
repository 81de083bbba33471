/* UTF-8 validation, for text that must go out as a WebSocket text frame. */
#include "utf8.h"

/* The length of the UTF-8 sequence `s` starts with (shortest form, no
 * surrogates, at most U+10FFFF), or 0 when it is not one. */
static size_t utf8_char(const unsigned char *s, size_t left) {
  static const struct {
    unsigned char lead_mask, lead, bits_mask;
    unsigned min;
  } forms[] = { { 0xe0, 0xc0, 0x1f, 0x80 }, { 0xf0, 0xe0, 0x0f, 0x800 }, { 0xf8, 0xf0, 0x07, 0x10000 } };
  if (s[0] < 0x80)
    return 1;
  size_t f = 0;
  while (f < 3 && (s[0] & forms[f].lead_mask) != forms[f].lead)
    f++;
  size_t n = f + 2; /* bytes in the sequence */
  if (f == 3 || left < n)
    return 0;
  unsigned cp = s[0] & forms[f].bits_mask, min = forms[f].min;
  for (size_t k = 1; k < n; k++) {
    if ((s[k] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[k] & 0x3f);
  }
  return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : n;
}

int luari_utf8_valid(const char *s, size_t len) {
  for (size_t i = 0, n; i < len; i += n)
    if ((n = utf8_char((const unsigned char *)s + i, len - i)) == 0)
      return 0;
  return 1;
}

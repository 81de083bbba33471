/* UTF-8 validation: what a WebSocket text frame may carry. */
#include "../../core/utf8.h"
#include "test.h"

#define VALID(lit) luari_utf8_valid(lit, sizeof lit - 1)

int main(void) {
  CHECK(VALID("") && VALID("plain ASCII") && VALID("a\0b"), "ASCII, empty, NUL");
  CHECK(VALID("caf\xc3\xa9") && VALID("\xe2\x9c\x93") && VALID("\xf0\x9f\x93\x9e"), "2, 3 and 4-byte characters");
  CHECK(VALID("\xed\x9f\xbf") && VALID("\xee\x80\x80") && VALID("\xf4\x8f\xbf\xbf"),
        "U+D7FF, U+E000 and U+10FFFF, around the excluded ranges");
  CHECK(!VALID("Jos\xe9") && !VALID("\xe9t\xe9"), "Latin-1 bytes");
  CHECK(!VALID("\xc3") && !VALID("\xe2\x9c") && !VALID("\xf0\x9f\x93"), "a sequence cut short");
  CHECK(!VALID("\x80") && !VALID("\xbf") && !VALID("a\x80" "b"), "a lone continuation byte");
  CHECK(!VALID("\xc0\xaf") && !VALID("\xe0\x80\xaf") && !VALID("\xf0\x80\x80\xaf"), "overlong forms");
  CHECK(!VALID("\xed\xa0\x80") && !VALID("\xed\xbf\xbf"), "UTF-16 surrogates");
  CHECK(!VALID("\xf4\x90\x80\x80") && !VALID("\xf8\x88\x80\x80\x80") && !VALID("\xff"),
        "past U+10FFFF, 5-byte forms, 0xFF");
  CHECK(!VALID("\xc3\x28"), "a lead byte followed by ASCII");
  TEST_DONE();
}

/*
** fuzz_lua.c: libFuzzer target for the 'lua' decoder (see
** fuzz_common.h). Random bytes rarely carry a length header that
** matches the bytes after it, which would leave the payload decoder
** unexplored: when the slicing byte has its high bit set, the rest is
** taken as one payload and given a correct header.
*/
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *framed;
  size_t plen;
  if (size < 1 || !(data[0] & 0x80))
    return fuzz_run("lua", data, size);
  plen = size - 1;
  if ((framed = (uint8_t *)malloc(size + 4)) == NULL)
    return 0;
  framed[0] = data[0];
  framed[1] = (uint8_t)plen;
  framed[2] = (uint8_t)(plen >> 8);
  framed[3] = (uint8_t)(plen >> 16);
  framed[4] = (uint8_t)(plen >> 24);
  memcpy(framed + 5, data + 1, plen);
  fuzz_run("lua", framed, size + 4);
  free(framed);
  return 0;
}

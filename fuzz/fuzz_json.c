/* fuzz_json.c: libFuzzer target for the 'json' decoder (see fuzz_common.h) */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_run("json", data, size);
}

// Config-only model directories of a make-model preset for GPU model tests: DeepSeek-V2-Lite or
// V3 dimensions cut to a few layers, with dummy weights drawn on the device at load.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "model/make_model.h"

namespace wideserve::test {

// Writes the preset's config (`layers` layers) to <temp>/ws_<tag>_<pid> and returns that path:
// one directory per process, since ctest may run the tests of a suite at once.
inline std::string make_preset_config_dir(const std::string& preset, int64_t layers,
                                          const std::string& tag) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("ws_" + tag + "_" + std::to_string(::getpid())))
          .string();
  model::MakeModelOptions mo;
  mo.preset = preset;
  mo.out_dir = dir;
  mo.layers = layers;
  mo.config_only = true;
  model::make_model(mo);
  return dir;
}

}  // namespace wideserve::test

#include "common/data_dir.h"

#include <cstdlib>
#include <filesystem>

#include "common/check.h"

namespace wideserve {

std::string data_dir() {
  std::string d = WIDESERVE_DATA_DIR;
  if (const char* env = std::getenv("WIDESERVE_DATA_DIR"); env && *env) d = env;
  WS_CHECK_CODE(kNotFound, std::filesystem::is_directory(d),
                "data directory {} not found (set WIDESERVE_DATA_DIR)", d);
  return d;
}

}  // namespace wideserve

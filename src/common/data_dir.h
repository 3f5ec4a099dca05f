// Where the project's data files (tokenizers) are: $WIDESERVE_DATA_DIR, else the source tree's
// data/.
#pragma once

#include <string>

namespace wideserve {

// Directory holding tokenizers/ etc.; throws kNotFound if it does not exist.
std::string data_dir();

}  // namespace wideserve

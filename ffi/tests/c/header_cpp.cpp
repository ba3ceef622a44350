// The header compiles as C++ and links from C++ (extern "C").
#include "augur.h"

#include <cstdio>
#include <cstring>

int main() {
    augur_session_params p = augur_session_params_default();
    augur_model *m = nullptr;
    augur_status s = augur_model_load(nullptr, nullptr, &m);
    char msg[128];
    augur_last_error_message(msg, sizeof msg, nullptr);
    bool ok = s == AUGUR_NULL_POINTER && m == nullptr && p.top_k == 40 &&
              std::strcmp(msg, "path must not be NULL") == 0 &&
              std::strcmp(augur_status_name(AUGUR_OK), "AUGUR_OK") == 0;
    std::printf("c++: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}

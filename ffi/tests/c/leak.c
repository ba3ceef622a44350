/* Loads and frees models and sessions in a loop, with a short generation
 * and failed calls in between. Run under LeakSanitizer: any leak fails it.
 *
 * usage: leak MODEL.gguf ROUNDS
 */
#include "check.h"

static bool keep_going(void *user_data, const char *bytes, size_t len) {
    (void)bytes;
    (void)len;
    (*(size_t *)user_data) += len;
    return true;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL ROUNDS\n", argv[0]);
        return 2;
    }
    int rounds = atoi(argv[2]);
    for (int r = 0; r < rounds; r++) {
        augur_model *m = NULL;
        CHECK_STATUS(augur_model_load(argv[1], NULL, &m), AUGUR_OK);
        if (m == NULL) break;
        augur_session_params p = augur_session_params_default();
        p.n_ctx = 128;
        p.strategy = (r % 2 == 0) ? "baseline" : "prompt-lookup";
        augur_session *s = NULL;
        CHECK_STATUS(augur_session_new(m, NULL, &p, &s), AUGUR_OK);
        size_t bytes = 0;
        augur_stats st;
        CHECK_STATUS(augur_generate(s, "Hello, my name is", 2, false, keep_going, &bytes, &st),
                     AUGUR_OK);
        CHECK(st.n_generated >= 1);
        /* Failures allocate messages and partial state: none may leak. */
        CHECK_STATUS(augur_generate(s, "hi", 0, false, NULL, NULL, NULL), AUGUR_INVALID_ARGUMENT);
        augur_model *bad = NULL;
        CHECK_STATUS(augur_model_load("/nonexistent/model.gguf", NULL, &bad), AUGUR_MODEL_LOAD);
        p.strategy = "warp-drive";
        augur_session *none = NULL;
        CHECK_STATUS(augur_session_new(m, NULL, &p, &none), AUGUR_UNKNOWN_STRATEGY);
        /* Free in either order: the session keeps the model alive. */
        if (r % 2 == 0) {
            augur_session_free(s);
            augur_model_free(m);
        } else {
            augur_model_free(m);
            augur_session_free(s);
        }
    }
    return finish("leak");
}

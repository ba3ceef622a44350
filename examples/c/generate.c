/* Streams a model's answer to a prompt through libaugur, with the strategy
 * of your choice, and prints the statistics.
 *
 *   generate MODEL.gguf "PROMPT" [STRATEGY [MAX_TOKENS [DRAFT.gguf]]]
 *
 * STRATEGY: baseline (default), prompt-lookup, lookahead, speculative (needs
 * DRAFT.gguf, a smaller model with the same vocabulary). The text is the
 * same whichever strategy runs: only the speed differs.
 *
 * Build (see ffi/README.md):
 *   cargo build --release -p augur-ffi
 *   cc examples/c/generate.c -Iffi/include -Ltarget/release -laugur \
 *      -Wl,-rpath,$PWD/target/release -o generate
 */
#include <stdio.h>
#include <stdlib.h>

#include "augur.h"

static bool print_piece(void *user_data, const char *bytes, size_t len) {
    (void)user_data;
    fwrite(bytes, 1, len, stdout);
    fflush(stdout);
    return true; /* false would stop the generation here */
}

/* Prints the last error of a failed call and returns 1. */
static int fail(const char *what, augur_status status) {
    char message[1024];
    augur_last_error_message(message, sizeof message, NULL);
    fprintf(stderr, "%s failed: %s: %s\n", what, augur_status_name(status), message);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT [STRATEGY [MAX_TOKENS [DRAFT.gguf]]]\n",
                argv[0]);
        return 2;
    }
    const char *strategy = argc > 3 ? argv[3] : "baseline";
    int max_tokens = argc > 4 ? atoi(argv[4]) : 128;

    augur_model *model = NULL;
    augur_status status = augur_model_load(argv[1], NULL, &model);
    if (status != AUGUR_OK) return fail("loading the model", status);

    augur_model *draft = NULL;
    if (argc > 5) {
        status = augur_model_load(argv[5], NULL, &draft);
        if (status != AUGUR_OK) {
            augur_model_free(model);
            return fail("loading the draft model", status);
        }
    }

    augur_session_params params = augur_session_params_default();
    params.strategy = strategy;
    augur_session *session = NULL;
    status = augur_session_new(model, draft, &params, &session);
    /* The session holds its own references: the handles can go now. */
    augur_model_free(draft);
    augur_model_free(model);
    if (status != AUGUR_OK) return fail("creating the session", status);

    augur_stats stats;
    status = augur_generate(session, argv[2], max_tokens, true, print_piece, NULL, &stats);
    printf("\n");
    if (status != AUGUR_OK) {
        augur_session_free(session);
        return fail("generating", status);
    }
    fprintf(stderr,
            "[augur %s, %s] %llu tokens, %.1f tokens/s, %llu target passes, "
            "acceptance %.0f%%, %s\n",
            augur_version(), augur_session_strategy(session),
            (unsigned long long)stats.n_generated, stats.tokens_per_second,
            (unsigned long long)stats.target_passes, 100.0 * stats.acceptance_rate,
            stats.exactness == AUGUR_EXACTNESS_BIT_IDENTICAL ? "bit-identical" : "kernel-level");
    augur_session_free(session);
    return 0;
}

/* Generation through the C API, printed for the Rust test to compare with
 * the Rust API's output: every strategy, streaming, cancellation from the
 * callback, sampling with a seed, and a drafter written in C.
 *
 * usage: generate MODEL.gguf CHAT_PROMPT RAW_PROMPT MAX_TOKENS
 *
 * CHAT_PROMPT goes through the model's chat template; RAW_PROMPT is
 * tokenized with augur_tokenize and generated from as token ids.
 *
 * Output, one line per run:
 *   RUN <label> status=<code> n_generated=<n> stop=<code> exactness=<code>
 *       drafted=<n> accepted=<n> target_passes=<n> calls=<n> resets=<n>
 *   TOKENS <label> <id> <id> ...
 *   TEXT <label> <streamed text, hex-encoded>
 */
#include <stdint.h>

#include "check.h"

/* Collects the streamed text; stops after `stop_after` pieces when > 0. */
typedef struct {
    char text[16384];
    size_t len;
    int pieces;
    int stop_after;
} sink;

static bool on_token(void *user_data, const char *bytes, size_t len) {
    sink *s = (sink *)user_data;
    /* The piece is NUL-terminated and holds whole UTF-8 characters. */
    CHECK(bytes != NULL && len > 0 && bytes[len] == '\0');
    if (s->len + len < sizeof s->text) {
        memcpy(s->text + s->len, bytes, len);
        s->len += len;
        s->text[s->len] = '\0';
    }
    s->pieces++;
    return !(s->stop_after > 0 && s->pieces >= s->stop_after);
}

/* A prompt-lookup drafter in C: finds the newest earlier occurrence of the
 * last token in the context and proposes what followed it there. */
typedef struct {
    int calls;
    int resets;
} lookup_drafter;

static size_t lookup_propose(void *user_data, const int32_t *ctx, size_t n, int32_t *out,
                             size_t max_out) {
    lookup_drafter *d = (lookup_drafter *)user_data;
    d->calls++;
    if (n < 2) return 0;
    int32_t last = ctx[n - 1];
    for (size_t i = n - 1; i-- > 0;) {
        if (ctx[i] != last) continue;
        size_t k = 0;
        while (k < max_out && i + 1 + k < n) {
            out[k] = ctx[i + 1 + k];
            k++;
        }
        if (k > 0) return k;
    }
    return 0;
}

static void lookup_reset(void *user_data) { ((lookup_drafter *)user_data)->resets++; }

static void hex(const char *bytes, size_t len) {
    for (size_t i = 0; i < len; i++) printf("%02x", (unsigned char)bytes[i]);
}

/* Prints one run's results (status, stats, tokens, streamed text). */
static void report(const char *label, augur_status status, const augur_stats *st,
                   const augur_session *session, const sink *out, int calls, int resets) {
    printf("RUN %s status=%d n_generated=%llu stop=%d exactness=%d drafted=%llu accepted=%llu "
           "target_passes=%llu calls=%d resets=%d\n",
           label, (int)status, (unsigned long long)st->n_generated, (int)st->stop_reason,
           (int)st->exactness, (unsigned long long)st->drafted, (unsigned long long)st->accepted,
           (unsigned long long)st->target_passes, calls, resets);
    if (status != AUGUR_OK) fprintf(stderr, "%s: %s\n", label, last_error());
    size_t n = 0;
    int32_t toks[4096];
    CHECK_STATUS(augur_session_last_tokens(session, toks, 4096, &n), AUGUR_OK);
    CHECK(n == st->n_generated);
    printf("TOKENS %s", label);
    for (size_t i = 0; i < n; i++) printf(" %d", toks[i]);
    printf("\nTEXT %s ", label);
    hex(out->text, out->len);
    printf("\n");
    CHECK(st->n_drafters <= AUGUR_MAX_DRAFTERS);
    for (uint64_t i = 0; i < st->n_drafters; i++) {
        const augur_drafter_stats *d = &st->drafters[i];
        CHECK(d->name != NULL);
        printf("DRAFTER %s %s steps=%llu drafted=%llu accepted=%llu tokens=%llu\n", label,
               d->name != NULL ? d->name : "?", (unsigned long long)d->steps,
               (unsigned long long)d->drafted, (unsigned long long)d->accepted,
               (unsigned long long)d->tokens);
    }
    fflush(stdout);
}

/* One generation from a text prompt with a session made from `p`. */
static void run_text(const char *label, augur_model *m, augur_model *draft,
                     const augur_session_params *p, const char *prompt, int max_tokens,
                     int stop_after) {
    augur_session *s = NULL;
    augur_status status = augur_session_new(m, draft, p, &s);
    CHECK_STATUS(status, AUGUR_OK);
    if (s == NULL) return;
    static sink out;
    memset(&out, 0, sizeof out);
    out.stop_after = stop_after;
    augur_stats st;
    status = augur_generate(s, prompt, max_tokens, true, on_token, &out, &st);
    CHECK_STATUS(status, AUGUR_OK);
    report(label, status, &st, s, &out, 0, 0);
    augur_session_free(s);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL CHAT_PROMPT RAW_PROMPT MAX_TOKENS\n", argv[0]);
        return 2;
    }
    const char *prompt = argv[2];
    const char *raw_prompt = argv[3];
    int max_tokens = atoi(argv[4]);
    augur_model *m = NULL;
    CHECK_STATUS(augur_model_load(argv[1], NULL, &m), AUGUR_OK);
    if (m == NULL) return finish("generate");

    augur_session_params p = augur_session_params_default();
    /* The default strategy: auto, here with the model as its own draft. */
    run_text("auto", m, m, &p, prompt, max_tokens, 0);
    p.strategy = "baseline";
    run_text("baseline", m, NULL, &p, prompt, max_tokens, 0);

    /* Stop from the callback after three pieces. */
    run_text("cancel", m, NULL, &p, prompt, max_tokens, 3);

    /* Sampling with a seed. */
    augur_session_params sp = p;
    sp.temperature = 0.8f;
    sp.seed = 42;
    run_text("sampled", m, NULL, &sp, prompt, max_tokens, 0);

    /* The drafting strategies, allowed passes of any size (kernel-level):
     * over this short context SmolLM2's passes of every size give the
     * one-token logits, so greedy output must be the baseline's token for
     * token. */
    augur_session_params lp = p;
    lp.exact_mode = AUGUR_EXACT_KERNEL;
    lp.strategy = "prompt-lookup";
    run_text("prompt-lookup", m, NULL, &lp, prompt, max_tokens, 0);
    lp.strategy = "lookahead";
    run_text("lookahead", m, NULL, &lp, prompt, max_tokens, 0);
    lp.strategy = "speculative";
    lp.draft_max = 4;
    run_text("speculative", m, m, &lp, prompt, max_tokens, 0);

    /* A prompt given as token ids (no chat template). */
    {
        size_t n = 0;
        CHECK_STATUS(augur_tokenize(m, raw_prompt, true, NULL, 0, &n), AUGUR_BUFFER_TOO_SMALL);
        int32_t *toks = (int32_t *)calloc(n, sizeof *toks);
        CHECK_STATUS(augur_tokenize(m, raw_prompt, true, toks, n, &n), AUGUR_OK);
        augur_session *s = NULL;
        CHECK_STATUS(augur_session_new(m, NULL, &p, &s), AUGUR_OK);
        static sink out;
        memset(&out, 0, sizeof out);
        augur_stats st;
        augur_status status = augur_generate_tokens(s, toks, n, max_tokens, on_token, &out, &st);
        CHECK_STATUS(status, AUGUR_OK);
        report("raw-tokens", status, &st, s, &out, 0, 0);
        augur_session_free(s);
        free(toks);
    }

    /* The application drafter, twice on one session (reset each time). */
    {
        lookup_drafter state = {0, 0};
        augur_drafter d = {lookup_propose, lookup_reset, &state};
        augur_session_params dp = p;
        dp.exact_mode = AUGUR_EXACT_KERNEL;
        dp.draft_max = 4;
        augur_session *s = NULL;
        CHECK_STATUS(augur_session_new_with_drafter(m, &d, &dp, &s), AUGUR_OK);
        if (s != NULL) {
            static sink out;
            for (int round = 0; round < 2; round++) {
                memset(&out, 0, sizeof out);
                augur_stats st;
                augur_status status = augur_generate(s, prompt, max_tokens, true, on_token, &out, &st);
                CHECK_STATUS(status, AUGUR_OK);
                report(round == 0 ? "c-drafter" : "c-drafter-again", status, &st, s, &out,
                       state.calls, state.resets);
            }
            augur_session_free(s);
        }
    }

    augur_model_free(m);
    return finish("generate");
}
